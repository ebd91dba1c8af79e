// Finding the opencode-lsp executable: the `opencode.path` setting, else PATH,
// else the directories `go install` writes to. Pure logic over an injected
// file check, so that it is tested without VS Code.
import * as path from 'path';

/** The server's executable name. */
export const SERVER_NAME = 'opencode-lsp';

/** How to install the server, shown when it is missing. */
export const INSTALL_HINT =
  'Install it with `go install github.com/opencode-lsp/opencode-lsp/cmd/opencode-lsp@latest` ' +
  '(Go 1.26 or newer), or set "opencode.path" to the executable.';

/** What discovery may look at (process.env, the OS, the file system). */
export interface Environment {
  env: Record<string, string | undefined>;
  homedir: string;
  platform: NodeJS.Platform;
  workspaceFolder?: string;
  /** Whether p is an executable regular file. */
  isExecutable(p: string): boolean;
}

export type Discovery =
  | { ok: true; path: string; source: 'setting' | 'PATH' | 'GOBIN' | 'GOPATH' | 'home' }
  | { ok: false; message: string; searched: string[] };

/** Expands a leading `~` and `${workspaceFolder}` / `${userHome}` in a configured path. */
export function expandPath(p: string, e: Pick<Environment, 'homedir' | 'workspaceFolder'>): string {
  let out = p.trim();
  if (out === '~' || out.startsWith('~/') || out.startsWith('~\\')) out = e.homedir + out.slice(1);
  out = out.replace(/\$\{userHome\}/g, e.homedir);
  if (e.workspaceFolder !== undefined) out = out.replace(/\$\{workspaceFolder\}/g, e.workspaceFolder);
  return out;
}

/**
 * findServer resolves the server executable. A configured path must exist
 * (relative paths are taken from the first workspace folder); otherwise the
 * PATH entries, $GOBIN, every $GOPATH entry's bin and ~/go/bin are searched in
 * that order. The failure message names what was searched and how to install.
 */
export function findServer(configured: string | undefined, e: Environment): Discovery {
  const exe = e.platform === 'win32' ? SERVER_NAME + '.exe' : SERVER_NAME;
  const searched: string[] = [];
  if (configured && configured.trim() !== '') {
    let p = expandPath(configured, e);
    if (!path.isAbsolute(p) && e.workspaceFolder) p = path.join(e.workspaceFolder, p);
    if (e.isExecutable(p)) return { ok: true, path: p, source: 'setting' };
    return {
      ok: false,
      searched: [p],
      message: `opencode.path is set to "${configured}", but ${p} is not an executable file. ${INSTALL_HINT}`,
    };
  }
  const sep = e.platform === 'win32' ? ';' : ':';
  const candidates: Array<[string, 'PATH' | 'GOBIN' | 'GOPATH' | 'home']> = [];
  for (const dir of (e.env.PATH ?? '').split(sep)) if (dir) candidates.push([dir, 'PATH']);
  if (e.env.GOBIN) candidates.push([e.env.GOBIN, 'GOBIN']);
  for (const dir of (e.env.GOPATH ?? '').split(sep)) if (dir) candidates.push([path.join(dir, 'bin'), 'GOPATH']);
  candidates.push([path.join(e.homedir, 'go', 'bin'), 'home']);
  for (const [dir, source] of candidates) {
    const p = path.join(dir, exe);
    if (searched.includes(p)) continue;
    searched.push(p);
    if (e.isExecutable(p)) return { ok: true, path: p, source };
  }
  return { ok: false, searched, message: `${SERVER_NAME} was not found on PATH or in the Go bin directories. ${INSTALL_HINT}` };
}
