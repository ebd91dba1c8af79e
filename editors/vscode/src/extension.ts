// OpenCode for VS Code: starts opencode-lsp over stdio with
// vscode-languageclient, adds the palette commands, the chat panel that
// streams opencode/chatDelta, a status bar item for the running work, and
// keeps the API keys in SecretStorage (handed to the server through its
// environment only).
//
// The server's own command ids (opencode.chat, opencode.explain, …) are
// registered by vscode-languageclient from executeCommandProvider; the
// extension's commands use the prefix "opencode-lsp." so that they never
// collide. Code actions run the server's ids; the executeCommand middleware
// sees them, asks for a missing prompt and tracks them like palette commands.
import * as fs from 'fs';
import * as os from 'os';
import * as vscode from 'vscode';
import {
  LSPErrorCodes,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ResponseError,
  ServerOptions,
  State,
} from 'vscode-languageclient/node';
import * as A from './args';
import { findServer } from './binary';
import { ChatPanel } from './chat';
import { SECRET_ENV, SERVICE_LABELS, SERVICES, Service, secretKey, serverEnvironment, serverSection } from './settings';
import { StatusModel } from './status';
import { ChatResultLike, Transcript } from './transcript';

const SECTION = 'opencode';

interface RunResult {
  runId: string;
  command: string;
  exitCode: number;
  durationMs: number;
  diagnostics: Record<string, number>;
  outputTail: string;
  sandboxUrl?: string;
}
interface GenerateResult {
  runId: string;
  message: string;
  files: Array<{ path: string; uri: string; action: string }>;
  commands: Array<{ command: string; exitCode: number | null }>;
  sandboxUrl?: string;
  applied: boolean;
}
interface AskResult { route: string; chat?: ChatResultLike; generate?: GenerateResult }
interface StatusResult {
  sandboxes: Array<{ provider: string; id: string; state: string; seconds: number }>;
  usage: Record<string, number>;
  runs: Array<{ runId: string; kind: string; state: string }>;
  isolation?: string;
}

/** What activate() returns: for other extensions and the end-to-end test. */
export interface OpenCodeApi {
  readonly client: LanguageClient | undefined;
  /** The server executable in use, or undefined when it was not found. */
  readonly serverPath: string | undefined;
  /** The chat transcript: label and answer text of every thread. */
  transcript(): Array<{ threadId?: string; label: string; answer: string; done: boolean; error?: string }>;
  /** The sandbox URL of the last run or generate that reported one. */
  readonly sandboxUrl: string | undefined;
  /** Resolves when the server is running (or rejects when it cannot start). */
  ready(): Promise<void>;
  /** The status bar item's text and the command a click runs. */
  statusBar(): { text: string; command: string };
}

let extension: OpenCodeExtension | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<OpenCodeApi> {
  extension = new OpenCodeExtension(context);
  extension.register();
  void extension.start().catch(() => undefined);
  return extension.api();
}

export async function deactivate(): Promise<void> {
  await extension?.stop();
  extension = undefined;
}

/** A LogOutputChannel view of the output channel whose level follows opencode.trace.server (vscode-languageclient only traces at LogLevel.Trace). */
class TraceChannel {
  private readonly emitter = new vscode.EventEmitter<vscode.LogLevel>();
  readonly onDidChangeLogLevel = this.emitter.event;
  readonly name: string;
  constructor(private readonly out: vscode.OutputChannel) {
    this.name = out.name;
  }
  get logLevel(): vscode.LogLevel {
    const v = vscode.workspace.getConfiguration(SECTION).get<string>('trace.server', 'off');
    return v === 'off' ? vscode.LogLevel.Off : vscode.LogLevel.Trace;
  }
  changed(): void {
    this.emitter.fire(this.logLevel);
  }
  trace(m: string): void { this.out.appendLine(m); }
  debug(m: string): void { this.out.appendLine(m); }
  info(m: string): void { this.out.appendLine(m); }
  warn(m: string): void { this.out.appendLine(m); }
  error(m: string | Error): void { this.out.appendLine(String(m)); }
  append(v: string): void { this.out.append(v); }
  appendLine(v: string): void { this.out.appendLine(v); }
  replace(v: string): void { this.out.replace(v); }
  clear(): void { this.out.clear(); }
  show(preserveFocus?: boolean): void { this.out.show(preserveFocus); }
  hide(): void { this.out.hide(); }
  dispose(): void { this.emitter.dispose(); }
}

class OpenCodeExtension {
  private readonly output = vscode.window.createOutputChannel('OpenCode', { log: true });
  private readonly traceChannel = new TraceChannel(this.output);
  private readonly status = new StatusModel();
  private readonly statusItem = vscode.window.createStatusBarItem('opencode.status', vscode.StatusBarAlignment.Left, 10);
  private readonly transcript = new Transcript();
  private readonly chat: ChatPanel;
  private client?: LanguageClient;
  private serverPath?: string;
  private sandboxUrl?: string;
  private starting?: Promise<void>;
  private lifecycle: Promise<void> = Promise.resolve();
  /** the API keys the running server was started with (to ignore secret-storage events that change nothing) */
  private startedSecrets = '';
  private restartTimer?: NodeJS.Timeout;
  /** runs this window cancelled with opencode.cancel (their commands then fail with "<runId> was cancelled") */
  private readonly cancelledRuns = new Set<string>();
  /** status entries in flight when the user cancelled everything (their answers may arrive before the cancel's) */
  private readonly cancelRequested = new Set<number>();
  /** chat-panel thread key of each tracked command in flight, by status entry id */
  private readonly chatKeys = new Map<number, string>();

  constructor(private readonly context: vscode.ExtensionContext) {
    this.chat = new ChatPanel(
      context.extensionUri,
      this.transcript,
      (_key, threadId, prompt) => void this.guard(() => this.serverCommand(A.ServerCommand.chat, A.chatArgs(prompt, undefined, threadId))),
      () => void this.cancel(),
    );
    this.statusItem.name = 'OpenCode';
    this.refreshStatus();
    this.statusItem.show();
  }

  api(): OpenCodeApi {
    const self = this; // the getters below read the live state
    return {
      get client() { return self.client; },
      get serverPath() { return self.serverPath; },
      get sandboxUrl() { return self.sandboxUrl; },
      transcript: () =>
        self.transcript.threads.map((t) => {
          const last = [...t.turns].reverse().find((x) => x.role === 'assistant');
          return { threadId: t.threadId, label: t.label, answer: last?.text ?? '', done: last?.done ?? false, error: last?.error };
        }),
      ready: () => self.starting ?? Promise.reject(new Error('opencode-lsp is not started')),
      statusBar: () => ({ text: self.statusItem.text, command: String(self.statusItem.command ?? '') }),
    };
  }

  register(): void {
    const c = this.context.subscriptions;
    const cmd = (id: string, fn: (...args: any[]) => unknown) => c.push(vscode.commands.registerCommand(id, fn));
    cmd('opencode-lsp.ask', (a?: { prompt?: string }) => this.guard(() => this.ask(a?.prompt)));
    cmd('opencode-lsp.explainSelection', () => this.guard(() => this.explain()));
    cmd('opencode-lsp.generate', (a?: { prompt?: string }) => this.guard(() => this.generate(a?.prompt)));
    cmd('opencode-lsp.runInSandbox', (a?: { command?: string; sandbox?: string; timeoutSec?: number }) => this.guard(() => this.run(a)));
    cmd('opencode-lsp.cancel', (a?: { runId?: string }) => this.guard(() => this.cancel(a?.runId)));
    cmd('opencode-lsp.openSandboxPreview', () => this.openPreview());
    cmd('opencode-lsp.showStatus', () => this.guard(() => this.showStatus()));
    cmd('opencode-lsp.setApiKey', (a?: { service?: Service; key?: string }) => this.guard(() => this.setApiKey(a)));
    cmd('opencode-lsp.showChat', () => this.chat.reveal());
    cmd('opencode-lsp.showLog', () => this.output.show(true));
    cmd('opencode-lsp.restartServer', () => this.restart());
    c.push(this.output, this.traceChannel, this.statusItem, this.chat);
    c.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (!e.affectsConfiguration(SECTION)) return;
        if (e.affectsConfiguration(SECTION + '.trace.server')) this.traceChannel.changed();
        if (['path', 'serverArgs', 'serverEnv'].some((k) => e.affectsConfiguration(`${SECTION}.${k}`))) {
          this.scheduleRestart();
        } else if (this.client?.state === State.Running) {
          void this.client.sendNotification('workspace/didChangeConfiguration', { settings: { [SECTION]: this.section() } });
        }
      }),
      this.context.secrets.onDidChange(async (e) => {
        if (!SERVICES.some((s) => secretKey(s) === e.key)) return;
        // another window changed a key: restart with it (a change made here has restarted already)
        if (JSON.stringify(await this.readSecrets()) !== this.startedSecrets) this.scheduleRestart();
      }),
    );
  }

  // ---- server lifecycle ------------------------------------------------------------------------------------------

  /** start starts the server (after any start, stop or restart already under way). */
  start(): Promise<void> {
    return this.serialize(() => this.doStart());
  }

  /** serialize runs lifecycle steps one after the other, so that two clients never register the same commands. */
  private serialize(fn: () => Promise<void>): Promise<void> {
    const p = this.lifecycle.then(fn, fn);
    this.lifecycle = p.catch(() => undefined);
    this.starting = p;
    p.catch(() => undefined);
    return p;
  }

  private async doStart(): Promise<void> {
    this.status.setServer('starting');
    this.refreshStatus();
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const found = findServer(cfg.get<string>('path', ''), {
      env: process.env,
      homedir: os.homedir(),
      platform: process.platform,
      workspaceFolder: folder,
      isExecutable: (p) => {
        try {
          fs.accessSync(p, fs.constants.X_OK);
          return fs.statSync(p).isFile();
        } catch {
          return false;
        }
      },
    });
    if (!found.ok) {
      this.serverPath = undefined;
      this.status.setServer('missing', found.message);
      this.refreshStatus();
      this.output.appendLine(`[opencode] ${found.message}\n[opencode] searched: ${found.searched.join(', ')}`);
      void vscode.window.showErrorMessage(`OpenCode: ${found.message}`, 'Copy install command', 'Open Settings').then((pick) => {
        if (pick === 'Copy install command') void vscode.env.clipboard.writeText('go install github.com/opencode-lsp/opencode-lsp/cmd/opencode-lsp@latest');
        if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'opencode.path');
      });
      throw new Error(found.message);
    }
    this.serverPath = found.path;

    const secrets = await this.readSecrets();
    this.startedSecrets = JSON.stringify(secrets);
    const { env, ignored } = serverEnvironment(process.env, cfg.get<Record<string, unknown>>('serverEnv', {}), secrets);
    if (ignored.length) {
      this.output.appendLine(`[opencode] ignored ${ignored.join(', ')} in opencode.serverEnv: use "OpenCode: Set API Key" (secret storage) for API keys`);
    }
    const stored = SERVICES.filter((s) => secrets[s]).map((s) => SERVICE_LABELS[s]);
    this.output.appendLine(`[opencode] starting ${found.path} (found via ${found.source}); keys from secret storage: ${stored.join(', ') || 'none'}`);

    const serverOptions: ServerOptions = {
      command: found.path,
      args: cfg.get<string[]>('serverArgs', []),
      // no `transport`: vscode-languageclient would add a --stdio flag; stdio is the server's default
      options: { env, cwd: folder },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: 'file' }],
      outputChannel: this.output,
      traceOutputChannel: this.traceChannel as unknown as vscode.LogOutputChannel,
      initializationOptions: this.section(),
      middleware: {
        executeCommand: async (command, args) => this.serverCommand(command, args[0], { fromCodeAction: true }),
        workspace: {
          configuration: async (params, token, next) => {
            const res = await next(params, token);
            if (!Array.isArray(res)) return res;
            return params.items.map((item, i) => (item.section === SECTION ? this.section() : res[i]));
          },
        },
      },
    };
    const client = new LanguageClient(SECTION, 'OpenCode', serverOptions, clientOptions);
    this.client = client;
    client.onDidChangeState((e) => {
      if (this.client !== client) return;
      this.status.setServer(e.newState === State.Running ? 'running' : e.newState === State.Starting ? 'starting' : 'stopped');
      this.refreshStatus();
    });
    try {
      await client.start();
    } catch (err) {
      this.status.setServer('failed', String((err as Error)?.message ?? err));
      this.refreshStatus();
      throw err;
    }
    client.onNotification('opencode/chatDelta', (p: { threadId: string; runId: string; delta: string }) => {
      if (!p || typeof p.delta !== 'string') return;
      const key = this.transcript.delta(p);
      for (const [id, k] of this.chatKeys) if (k === key) this.status.attachRun(id, p.runId);
      this.chat.update(key);
      this.refreshStatus();
    });
    const info = client.initializeResult?.serverInfo;
    this.output.appendLine(`[opencode] ${info?.name ?? 'server'} ${info?.version ?? ''} running; commands: ${this.serverCommands().join(', ')}`);
  }

  stop(): Promise<void> {
    return this.serialize(() => this.doStop());
  }

  private async doStop(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    try {
      if (c.isRunning()) await c.stop();
    } catch {
      /* already stopped */
    }
    await c.dispose().catch(() => undefined);
  }

  restart(): Promise<void> {
    return this.serialize(async () => {
      await this.doStop();
      await this.doStart();
    });
  }

  private scheduleRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restart().catch(() => undefined);
    }, 200);
  }

  private async readSecrets(): Promise<Partial<Record<Service, string>>> {
    const secrets: Partial<Record<Service, string>> = {};
    for (const s of SERVICES) secrets[s] = (await this.context.secrets.get(secretKey(s))) || undefined;
    return secrets;
  }

  /** The `opencode` section as the server gets it: only what the user set, answers left to the chat panel. */
  private section(): Record<string, unknown> {
    const cfg = vscode.workspace.getConfiguration(SECTION);
    const explicit: Record<string, unknown> = {};
    const props = (this.context.extension.packageJSON?.contributes?.configuration?.properties ?? {}) as Record<string, unknown>;
    for (const full of Object.keys(props)) {
      const key = full.slice(SECTION.length + 1);
      const i = cfg.inspect(key);
      const v = i?.workspaceFolderValue ?? i?.workspaceValue ?? i?.globalValue;
      if (v !== undefined) explicit[key] = v;
    }
    return serverSection(explicit);
  }

  private serverCommands(): string[] {
    return this.client?.initializeResult?.capabilities.executeCommandProvider?.commands ?? [];
  }

  private async runningClient(): Promise<LanguageClient> {
    if (this.starting) await this.starting;
    if (!this.client || this.client.state !== State.Running) throw new Error('opencode-lsp is not running (see "OpenCode: Show Server Log")');
    return this.client;
  }

  // ---- commands -------------------------------------------------------------------------------------------------

  /**
   * isCancellation tells a cancelled command from a failed one: the client's own $/cancelRequest answers
   * RequestCancelled; a run stopped with opencode.cancel (status bar, panel, Cancel command) fails with
   * "<command>: <runId> was cancelled".
   */
  private isCancellation(err: unknown): boolean {
    if (err instanceof vscode.CancellationError) return true;
    if (!(err instanceof ResponseError)) return false;
    if ((err as { opencodeCancelled?: boolean }).opencodeCancelled) return true;
    if (err.code === LSPErrorCodes.RequestCancelled) return true;
    const m = / (\S+) was cancelled$/.exec(err.message);
    return !!m && this.cancelledRuns.has(m[1]);
  }

  /** guard runs a command handler, turning its failure into an error message (and an undefined result). */
  private async guard<T>(fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (err) {
      if (this.isCancellation(err)) return undefined;
      const msg = err instanceof Error ? err.message : String(err);
      void vscode.window.showErrorMessage(`OpenCode: ${msg}`);
      return undefined;
    }
  }

  private editorContext(requireEditor: boolean): A.EditorContext | undefined {
    const ed = vscode.window.activeTextEditor;
    if (!ed || ed.document.uri.scheme !== 'file') {
      if (requireEditor) throw new Error('open a file (and select code) first');
      return undefined;
    }
    const s = ed.selection;
    return {
      uri: ed.document.uri.toString(),
      selection: { start: { line: s.start.line, character: s.start.character }, end: { line: s.end.line, character: s.end.character } },
    };
  }

  private async prompt(kind: 'ask' | 'generate'): Promise<string | undefined> {
    const v = await vscode.window.showInputBox({
      title: kind === 'generate' ? 'OpenCode: Generate' : 'OpenCode: Ask',
      prompt: kind === 'generate' ? 'What should the agent write? (it works in a sandbox; you review the edit)' : 'Your question (about the selection, if any)',
      placeHolder: kind === 'generate' ? 'Add a unit test for Helper' : 'What does this code do?',
      ignoreFocusOut: true,
    });
    return v && v.trim() ? v.trim() : undefined;
  }

  private async ask(prompt?: string): Promise<unknown> {
    const text = prompt ?? (await this.prompt('ask'));
    if (!text) return undefined;
    const ed = this.editorContext(false);
    await this.runningClient();
    if (this.serverCommands().includes(A.ServerCommand.ask)) return this.serverCommand(A.ServerCommand.ask, A.askArgs(text, ed));
    return this.serverCommand(A.ServerCommand.chat, A.chatArgs(text, ed));
  }

  private async explain(): Promise<unknown> {
    return this.serverCommand(A.ServerCommand.explain, A.explainArgs(this.editorContext(true)!));
  }

  private async generate(prompt?: string): Promise<unknown> {
    const text = prompt ?? (await this.prompt('generate'));
    if (!text) return undefined;
    return this.serverCommand(A.ServerCommand.generate, A.generateArgs(text, this.editorContext(false)));
  }

  private async run(a?: { command?: string; sandbox?: string; timeoutSec?: number }): Promise<unknown> {
    const ed = this.editorContext(false);
    const uri = ed?.uri ?? vscode.workspace.workspaceFolders?.[0]?.uri.toString();
    return this.serverCommand(A.ServerCommand.run, A.runArgs({ ...a, uri }));
  }

  private async cancel(runId?: string): Promise<unknown> {
    const client = await this.runningClient();
    if (runId) this.cancelledRuns.add(runId);
    else for (const id of this.status.ids()) this.cancelRequested.add(id);
    const res = await client.sendRequest(ExecuteCommandRequest.type, { command: A.ServerCommand.cancel, arguments: [runId ? { runId } : {}] });
    const ids = (res as { cancelled?: string[] })?.cancelled ?? [];
    for (const id of ids) this.cancelledRuns.add(id);
    const n = ids.length;
    vscode.window.setStatusBarMessage(n ? `OpenCode: cancelled ${n} run${n > 1 ? 's' : ''}` : 'OpenCode: nothing to cancel', 3000);
    return res;
  }

  private async openPreview(): Promise<void> {
    if (!this.sandboxUrl) {
      void vscode.window.showInformationMessage('OpenCode: no sandbox preview yet — a run or generate that starts a server in the sandbox reports its URL.');
      return;
    }
    await vscode.env.openExternal(vscode.Uri.parse(this.sandboxUrl));
  }

  private async showStatus(): Promise<unknown> {
    const client = await this.runningClient();
    const st = (await client.sendRequest(ExecuteCommandRequest.type, { command: A.ServerCommand.status, arguments: [{}] })) as StatusResult;
    const items: Array<vscode.QuickPickItem & { runId?: string }> = [];
    const info = client.initializeResult?.serverInfo;
    items.push({ label: `$(server-process) ${info?.name ?? 'opencode-lsp'} ${info?.version ?? ''}`, detail: `${this.serverPath ?? ''}${st.isolation ? ' · local sandbox: ' + st.isolation : ''}` });
    for (const r of st.runs ?? []) {
      items.push({ label: `$(${r.state === 'running' ? 'sync~spin' : 'check'}) ${r.kind} ${r.runId}`, description: r.state, detail: r.state === 'running' ? 'select to cancel' : undefined, runId: r.state === 'running' ? r.runId : undefined });
    }
    for (const s of st.sandboxes ?? []) {
      items.push({ label: `$(vm) ${s.provider} ${s.id}`, description: s.state, detail: `${Math.round(s.seconds)} s` });
    }
    const usage = Object.entries(st.usage ?? {}).map(([p, s]) => `${p}: ${Math.round(s)} s`).join(', ');
    if (usage) items.push({ label: '$(watch) sandbox time', description: usage });
    for (const s of SERVICES) {
      const has = !!(await this.context.secrets.get(secretKey(s)));
      items.push({ label: `$(key) ${SERVICE_LABELS[s]} API key`, description: has ? 'in secret storage' : process.env[SECRET_ENV[s]] ? 'from the environment' : 'not set' });
    }
    const pick = await vscode.window.showQuickPick(items, { title: 'OpenCode status', placeHolder: 'Runs, sandboxes and keys' });
    if (pick?.runId) await this.cancel(pick.runId);
    return st;
  }

  private async setApiKey(a?: { service?: Service; key?: string }): Promise<boolean> {
    let service = a?.service;
    if (!service) {
      const items = [];
      for (const s of SERVICES) {
        const has = !!(await this.context.secrets.get(secretKey(s)));
        items.push({ label: SERVICE_LABELS[s], description: has ? 'stored — enter a new one, or an empty one to remove it' : 'not stored', service: s });
      }
      service = (await vscode.window.showQuickPick(items, { title: 'OpenCode: Set API Key', placeHolder: 'Which service?' }))?.service;
      if (!service) return false;
    }
    if (!SERVICES.includes(service)) throw new Error(`unknown service "${service}" (one of ${SERVICES.join(', ')})`);
    let key = a?.key;
    if (key === undefined) {
      key = await vscode.window.showInputBox({
        title: `OpenCode: ${SERVICE_LABELS[service]} API key`,
        prompt: `Kept in VS Code's secret storage and passed to opencode-lsp as ${SECRET_ENV[service]}; empty removes it.`,
        password: true,
        ignoreFocusOut: true,
      });
      if (key === undefined) return false;
    }
    key = key.trim();
    if (key) await this.context.secrets.store(secretKey(service), key);
    else await this.context.secrets.delete(secretKey(service));
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.restart();
    void vscode.window.showInformationMessage(`OpenCode: ${SERVICE_LABELS[service]} API key ${key ? 'stored' : 'removed'}; opencode-lsp restarted.`);
    return true;
  }

  /**
   * serverCommand runs one of the server's commands, from the palette, a code
   * action (through the executeCommand middleware) or the chat panel: it asks
   * for a missing prompt, shows the work in the status bar and the chat panel,
   * and presents the result.
   */
  private async serverCommand(command: string, arg: unknown, opts: { fromCodeAction?: boolean } = {}): Promise<unknown> {
    if (A.needsPrompt(command, arg)) {
      const text = await this.prompt(command === A.ServerCommand.generate ? 'generate' : 'ask');
      if (!text) return undefined;
      arg = { ...(arg as object), prompt: text };
    }
    const client = await this.runningClient();
    const label = A.describe(command, arg);
    const id = this.status.start(label);
    // chat answers stream into the panel; so does the agent's own account of its work (Generate)
    const isChat = command === A.ServerCommand.chat || command === A.ServerCommand.explain || command === A.ServerCommand.ask || command === A.ServerCommand.generate;
    let key: string | undefined;
    if (isChat) {
      const a = arg as { prompt?: string; threadId?: string };
      key = this.transcript.begin(label, command === A.ServerCommand.explain ? label : a.prompt ?? label, a.threadId);
      this.chatKeys.set(id, key);
      this.chat.reveal();
      this.chat.update(key);
    }
    this.refreshStatus();
    try {
      const res = await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: [arg] });
      this.present(command, res, key);
      return res;
    } catch (err) {
      const cancelled = this.isCancellation(err) || this.cancelRequested.has(id);
      if (cancelled && err instanceof ResponseError) (err as { opencodeCancelled?: boolean }).opencodeCancelled = true;
      if (key) {
        this.transcript.fail(key, cancelled ? 'Cancelled.' : `Failed: ${(err as Error).message}`);
        this.chat.update(key);
      }
      if (opts.fromCodeAction && !cancelled) void vscode.window.showErrorMessage(`OpenCode: ${(err as Error).message}`);
      throw err;
    } finally {
      this.cancelRequested.delete(id);
      this.status.finish(id);
      this.chatKeys.delete(id);
      this.refreshStatus();
    }
  }

  private present(command: string, res: unknown, key: string | undefined): void {
    if (!res || typeof res !== 'object') return;
    switch (command) {
      case A.ServerCommand.chat:
      case A.ServerCommand.explain:
        if (key) this.finishChat(key, res as ChatResultLike);
        break;
      case A.ServerCommand.ask: {
        const r = res as AskResult;
        if (key && r.chat) this.finishChat(key, r.chat);
        else if (key) this.finishChat(key, { threadId: '', text: r.generate?.message ?? `Routed to ${r.route}.` });
        if (r.generate) this.presentGenerate(r.generate);
        break;
      }
      case A.ServerCommand.generate:
        if (key) this.finishChat(key, { threadId: '', text: (res as GenerateResult).message ?? '' });
        this.presentGenerate(res as GenerateResult);
        break;
      case A.ServerCommand.run:
        this.presentRun(res as RunResult);
        break;
    }
  }

  private finishChat(key: string, r: ChatResultLike): void {
    this.transcript.finish(key, r);
    this.chat.update(key);
  }

  private presentRun(r: RunResult): void {
    if (r.sandboxUrl) this.sandboxUrl = r.sandboxUrl;
    const counts = Object.values(r.diagnostics ?? {});
    const problems = counts.reduce((a, b) => a + b, 0);
    const files = counts.filter((n) => n > 0).length;
    const secs = (r.durationMs / 1000).toFixed(1);
    const msg = `OpenCode: \`${r.command}\` exited ${r.exitCode} in ${secs} s — ${problems} problem${problems === 1 ? '' : 's'}${files ? ` in ${files} file${files === 1 ? '' : 's'}` : ''}.`;
    const buttons = [problems ? 'Show Problems' : undefined, r.sandboxUrl ? 'Open Preview' : undefined, 'Show Output'].filter((b): b is string => !!b);
    const show = r.exitCode === 0 ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
    void show(msg, ...buttons).then((pick) => {
      if (pick === 'Show Problems') void vscode.commands.executeCommand('workbench.actions.view.problems');
      if (pick === 'Open Preview') void this.openPreview();
      if (pick === 'Show Output') {
        this.output.appendLine(`[opencode] ${r.command} (exit ${r.exitCode}):\n${r.outputTail}`);
        this.output.show(true);
      }
    });
  }

  private presentGenerate(r: GenerateResult): void {
    if (r.sandboxUrl) this.sandboxUrl = r.sandboxUrl;
    const n = r.files?.length ?? 0;
    const what = n ? `${n} file${n === 1 ? '' : 's'} ${r.applied ? 'applied' : 'not applied'}` : 'no file changes';
    void vscode.window.showInformationMessage(`OpenCode: ${r.message ? r.message.split('\n')[0] + ' — ' : ''}${what}.`, ...(r.sandboxUrl ? ['Open Preview'] : [])).then((pick) => {
      if (pick === 'Open Preview') void this.openPreview();
    });
  }

  private refreshStatus(): void {
    const v = this.status.view();
    this.statusItem.text = v.text;
    this.statusItem.tooltip = v.tooltip;
    this.statusItem.command = v.command;
    this.statusItem.backgroundColor =
      v.severity === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground') : v.severity === 'warning' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }
}
