// The chat panel: a webview that shows the transcript, with answers streamed
// from opencode/chatDelta and rendered as sanitised Markdown (webview.ts),
// and a box per thread to ask a follow-up question.
import * as vscode from 'vscode';
import { Transcript } from './transcript';
import { chatHtml, nonce, threadView } from './webview';

export type FollowUp = (threadKey: string, threadId: string | undefined, prompt: string) => void;

export class ChatPanel implements vscode.Disposable {
  private panel?: vscode.WebviewPanel;
  private dirty = new Set<string>();
  private timer?: NodeJS.Timeout;
  private ready = false;

  constructor(
    private readonly extensionUri: vscode.Uri,
    readonly transcript: Transcript,
    private readonly onFollowUp: FollowUp,
    private readonly onCancel: () => void,
  ) {}

  /** reveal opens the panel (beside the editor, keeping focus there) or brings it forward. */
  reveal(): void {
    if (this.panel) {
      this.panel.reveal(undefined, true);
      return;
    }
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    const panel = vscode.window.createWebviewPanel(
      'opencode.chat',
      'OpenCode Chat',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [media], enableCommandUris: false },
    );
    this.panel = panel;
    this.ready = false;
    const w = panel.webview;
    w.html = chatHtml({
      cspSource: w.cspSource,
      nonce: nonce(),
      scriptUri: w.asWebviewUri(vscode.Uri.joinPath(media, 'chat.js')).toString(),
      styleUri: w.asWebviewUri(vscode.Uri.joinPath(media, 'chat.css')).toString(),
    });
    w.onDidReceiveMessage((m: { type?: string; key?: string; prompt?: string }) => {
      if (m.type === 'ready') {
        this.ready = true;
        for (const t of this.transcript.threads) this.dirty.add(t.key);
        this.flush();
      } else if (m.type === 'ask' && typeof m.key === 'string' && typeof m.prompt === 'string' && m.prompt.trim()) {
        this.onFollowUp(m.key, this.transcript.get(m.key)?.threadId, m.prompt);
      } else if (m.type === 'cancel') {
        this.onCancel();
      }
    });
    panel.onDidDispose(() => {
      this.panel = undefined;
      this.ready = false;
    });
  }

  get visible(): boolean {
    return !!this.panel;
  }

  /** update schedules a re-render of one thread (coalesced: at most every 40 ms). */
  update(key: string): void {
    this.dirty.add(key);
    if (!this.timer) this.timer = setTimeout(() => this.flush(), 40);
  }

  private flush(): void {
    this.timer = undefined;
    if (!this.panel || !this.ready) return;
    for (const key of this.dirty) {
      const t = this.transcript.get(key);
      if (t) void this.panel.webview.postMessage({ type: 'thread', thread: threadView(t) });
    }
    this.dirty.clear();
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.panel?.dispose();
  }
}
