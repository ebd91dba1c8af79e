// The status bar item's state: what runs, and what a click does. Pure logic
// (no VS Code), so that its transitions are tested on their own.

export type ServerState = 'starting' | 'running' | 'stopped' | 'missing' | 'failed';

export interface StatusView {
  text: string;
  tooltip: string;
  /** The extension command a click runs. */
  command: string;
  /** Highlight (error/warning background) or none. */
  severity?: 'error' | 'warning';
}

interface Entry { id: number; label: string; runId?: string }

/**
 * StatusModel tracks the commands in flight (started from the palette, a code
 * action or the chat panel) and the server's state, and computes the status
 * bar item: a spinner with the running work (click cancels it), or the idle
 * item (click shows status).
 */
export class StatusModel {
  private next = 1;
  private entries: Entry[] = [];
  private server: ServerState = 'starting';
  private serverDetail = '';

  /** start registers a command in flight; the returned id ends it. */
  start(label: string): number {
    const id = this.next++;
    this.entries.push({ id, label });
    return id;
  }

  /** attachRun records the server's runId of an entry (from chatDelta or a result). */
  attachRun(id: number, runId: string): void {
    const e = this.entries.find((x) => x.id === id);
    if (e && !e.runId) e.runId = runId;
  }

  finish(id: number): void {
    this.entries = this.entries.filter((e) => e.id !== id);
  }

  /** The server's runIds of the entries in flight (those known so far). */
  runIds(): string[] {
    return this.entries.filter((e) => e.runId).map((e) => e.runId!);
  }

  /** The ids of the entries in flight. */
  ids(): number[] {
    return this.entries.map((e) => e.id);
  }

  get running(): number {
    return this.entries.length;
  }

  setServer(state: ServerState, detail = ''): void {
    this.server = state;
    this.serverDetail = detail;
  }

  view(): StatusView {
    if (this.server === 'missing' || this.server === 'failed') {
      return {
        text: '$(error) OpenCode',
        tooltip: (this.server === 'missing' ? 'opencode-lsp not found. ' : 'opencode-lsp failed. ') + this.serverDetail,
        command: 'opencode-lsp.showLog',
        severity: 'error',
      };
    }
    if (this.entries.length > 0) {
      const first = this.entries[0];
      const more = this.entries.length > 1 ? ` (+${this.entries.length - 1})` : '';
      return {
        text: `$(sync~spin) OpenCode: ${first.label}${more}`,
        tooltip: 'Running: ' + this.entries.map((e) => e.label + (e.runId ? ` [${e.runId}]` : '')).join('; ') + ' — click to cancel',
        command: 'opencode-lsp.cancel',
      };
    }
    if (this.server === 'starting') {
      return { text: '$(loading~spin) OpenCode', tooltip: 'opencode-lsp is starting', command: 'opencode-lsp.showLog' };
    }
    if (this.server === 'stopped') {
      return { text: '$(circle-slash) OpenCode', tooltip: 'opencode-lsp is stopped — click to restart', command: 'opencode-lsp.restartServer', severity: 'warning' };
    }
    return { text: '$(sparkle) OpenCode', tooltip: 'OpenCode is ready — click for status', command: 'opencode-lsp.showStatus' };
  }
}
