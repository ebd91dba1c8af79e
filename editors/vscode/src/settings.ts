// The `opencode` settings section as the server receives it: only the values
// the user set (so that the server's own defaults apply otherwise), without
// the keys that only the extension reads, and with chat answers left to the
// extension (`answers: "none"`: the chat panel renders them).

/** Keys of the `opencode` section that configure the extension, not the server. */
export const CLIENT_ONLY_KEYS = ['path', 'serverArgs', 'serverEnv', 'trace'];

/** The server reads API keys from these environment variables; the extension fills them from secret storage. */
export const SECRET_ENV: Record<Service, string> = {
  openrouter: 'OPENROUTER_API_KEY',
  e2b: 'E2B_API_KEY',
  daytona: 'DAYTONA_API_KEY',
};

export type Service = 'openrouter' | 'e2b' | 'daytona';
export const SERVICES: Service[] = ['openrouter', 'e2b', 'daytona'];
export const SERVICE_LABELS: Record<Service, string> = { openrouter: 'OpenRouter', e2b: 'E2B', daytona: 'Daytona' };

/** The secret-storage key of a service's API key. */
export function secretKey(s: Service): string {
  return `opencode.${s}.apiKey`;
}

/**
 * serverSection builds the object sent as initializationOptions and as the
 * answer to workspace/configuration for section "opencode". `explicit` maps
 * dotted keys below "opencode" (for example "run.timeoutSec") to the values
 * the user set; unset keys are absent. Client-only keys are dropped, and so
 * is any `apiKey` (keys travel only through the server's environment).
 */
export function serverSection(explicit: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(explicit)) {
    const parts = key.split('.');
    if (CLIENT_ONLY_KEYS.includes(parts[0]) || parts[parts.length - 1] === 'apiKey') continue;
    if (value === undefined || value === null) continue;
    let node = out;
    for (const p of parts.slice(0, -1)) {
      if (typeof node[p] !== 'object' || node[p] === null) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = value;
  }
  out.answers = 'none';
  return out;
}

/**
 * serverEnvironment is the environment of the spawned server: the extension
 * host's, the user's `opencode.serverEnv` (minus any *_API_KEY entry, which
 * is reported in `ignored`), and the keys from secret storage.
 */
export function serverEnvironment(
  base: Record<string, string | undefined>,
  extra: Record<string, unknown> | undefined,
  secrets: Partial<Record<Service, string>>,
): { env: Record<string, string>; ignored: string[] } {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (typeof v === 'string') env[k] = v;
  const ignored: string[] = [];
  for (const [k, v] of Object.entries(extra ?? {})) {
    if (/_API_KEY$/i.test(k)) {
      ignored.push(k);
      continue;
    }
    if (typeof v === 'string') env[k] = v;
  }
  for (const s of SERVICES) {
    const v = secrets[s];
    if (v) env[SECRET_ENV[s]] = v;
  }
  return { env, ignored };
}
