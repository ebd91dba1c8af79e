// Building the editor contract's command arguments (one JSON object each,
// see lsp/command/command.go) from what the editor knows: the active
// document, the selection, a prompt. Positions are LSP's: 0-based lines and
// UTF-16 code units, which is what VS Code's Position uses as well.

export interface Position { line: number; character: number }
export interface Range { start: Position; end: Position }

/** The editor state a command is built from (a stand-in for vscode.TextEditor). */
export interface EditorContext {
  /** The document's URI as a string (file:///…). */
  uri: string;
  /** The selection; equal start and end mean "no selection" (a cursor). */
  selection?: Range;
}

export const isEmpty = (r: Range | undefined): boolean =>
  !r || (r.start.line === r.end.line && r.start.character === r.end.character);

const plain = (r: Range): Range => ({
  start: { line: r.start.line, character: r.start.character },
  end: { line: r.end.line, character: r.end.character },
});

/** Server command names (the contract's; registered by vscode-languageclient). */
export const ServerCommand = {
  chat: 'opencode.chat',
  explain: 'opencode.explain',
  generate: 'opencode.generate',
  run: 'opencode.run',
  ask: 'opencode.ask',
  cancel: 'opencode.cancel',
  status: 'opencode.status',
} as const;

export interface ChatArgs { prompt: string; uri?: string; range?: Range; threadId?: string; model?: string }
export interface ExplainArgs { uri: string; range?: Range }
export interface GenerateArgs { prompt: string; uri?: string; range?: Range; sandbox?: string; apply?: boolean }
export interface RunArgs { command?: string; uri?: string; sandbox?: string; timeoutSec?: number }
export interface AskArgs { prompt: string; uri?: string; range?: Range }
export interface CancelArgs { runId?: string }

/** opencode.explain: the selection, or the whole file when nothing is selected. */
export function explainArgs(ed: EditorContext): ExplainArgs {
  const a: ExplainArgs = { uri: ed.uri };
  if (!isEmpty(ed.selection)) a.range = plain(ed.selection!);
  return a;
}

/** opencode.chat: a question about the selection (or the file), optionally continuing a thread. */
export function chatArgs(prompt: string, ed?: EditorContext, threadId?: string): ChatArgs {
  const a: ChatArgs = { prompt: prompt.trim() };
  if (ed) {
    a.uri = ed.uri;
    if (!isEmpty(ed.selection)) a.range = plain(ed.selection!);
  }
  if (threadId) a.threadId = threadId;
  return a;
}

/** opencode.ask: a request the server routes to chat, generate or both. */
export function askArgs(prompt: string, ed?: EditorContext): AskArgs {
  const a: AskArgs = { prompt: prompt.trim() };
  if (ed) {
    a.uri = ed.uri;
    if (!isEmpty(ed.selection)) a.range = plain(ed.selection!);
  }
  return a;
}

/** opencode.generate: the agent works on the prompt, with the selection as context. */
export function generateArgs(prompt: string, ed?: EditorContext, sandbox?: string): GenerateArgs {
  const a: GenerateArgs = { prompt: prompt.trim() };
  if (ed) {
    a.uri = ed.uri;
    if (!isEmpty(ed.selection)) a.range = plain(ed.selection!);
  }
  if (sandbox) a.sandbox = sandbox;
  return a;
}

/** opencode.run: the project's check (or `command`) in the sandbox; uri picks the project. */
export function runArgs(opts: { command?: string; uri?: string; sandbox?: string; timeoutSec?: number } = {}): RunArgs {
  const a: RunArgs = {};
  if (opts.command && opts.command.trim() !== '') a.command = opts.command.trim();
  if (opts.uri) a.uri = opts.uri;
  if (opts.sandbox) a.sandbox = opts.sandbox;
  if (opts.timeoutSec && opts.timeoutSec > 0) a.timeoutSec = Math.floor(opts.timeoutSec);
  return a;
}

/**
 * needsPrompt tells whether a server command issued by a code action lacks
 * the prompt the user must type ("Ask about selection…", "Generate…" carry
 * none): the extension asks for it instead of letting the server offer
 * canned questions.
 */
export function needsPrompt(command: string, arg: unknown): boolean {
  if (command !== ServerCommand.chat && command !== ServerCommand.generate && command !== ServerCommand.ask) return false;
  const p = (arg as { prompt?: unknown } | undefined)?.prompt;
  return typeof p !== 'string' || p.trim() === '';
}

/** A short label for the status bar and the chat panel, e.g. "Explain main.go:3-5". */
export function describe(command: string, arg: unknown): string {
  const a = (arg ?? {}) as { uri?: string; range?: Range; prompt?: string; command?: string };
  const file = a.uri ? decodeURIComponent(a.uri.replace(/[?#].*$/, '').split('/').pop() ?? '') : '';
  let where = file;
  if (file && a.range) {
    const s = a.range.start.line + 1;
    let e = a.range.end.line + 1;
    if (a.range.end.character === 0 && e > s) e--;
    where += s === e ? `:${s}` : `:${s}-${e}`;
  }
  const short = (s: string) => (s.length > 40 ? s.slice(0, 39) + '…' : s);
  switch (command) {
    case ServerCommand.explain:
      return where ? `Explain ${where}` : 'Explain';
    case ServerCommand.chat:
    case ServerCommand.ask:
      return a.prompt ? short(a.prompt) + (where ? ` (${where})` : '') : where ? `Ask about ${where}` : 'Ask';
    case ServerCommand.generate:
      return a.prompt ? `Generate: ${short(a.prompt)}` : 'Generate';
    case ServerCommand.run:
      return a.command ? `Run ${short(a.command)}` : 'Run in sandbox';
    default:
      return command.replace(/^opencode\./, '');
  }
}
