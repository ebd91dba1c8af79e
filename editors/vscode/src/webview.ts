// The chat panel's HTML shell and its Content Security Policy. Pure (no VS
// Code), so that the policy is unit-tested: nothing may load but the
// extension's own script (by nonce) and stylesheet; no inline script, no
// eval, no remote content, no forms posting anywhere.
import { randomBytes } from 'crypto';
import { Thread } from './transcript';
import { escapeHtml, renderMarkdown } from './markdown';

export function nonce(): string {
  return randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

/** contentSecurityPolicy is the panel's CSP; cspSource is webview.cspSource. */
export function contentSecurityPolicy(cspSource: string, scriptNonce: string): string {
  return [
    "default-src 'none'",
    `style-src ${cspSource}`,
    `script-src 'nonce-${scriptNonce}'`,
    `img-src ${cspSource}`,
    `font-src ${cspSource}`,
    "form-action 'none'",
    "base-uri 'none'",
    "frame-src 'none'",
    "connect-src 'none'",
  ].join('; ');
}

/** chatHtml is the panel's document; the threads are rendered by media/chat.js from messages. */
export function chatHtml(o: { cspSource: string; nonce: string; scriptUri: string; styleUri: string }): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(contentSecurityPolicy(o.cspSource, o.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeHtml(o.styleUri)}">
<title>OpenCode Chat</title>
</head>
<body>
<main id="threads" aria-live="polite"><p class="empty" id="empty">Ask OpenCode something: select code and run <b>OpenCode: Explain Selection</b> or <b>OpenCode: Ask…</b>.</p></main>
<script nonce="${escapeHtml(o.nonce)}" src="${escapeHtml(o.scriptUri)}"></script>
</body>
</html>`;
}

/** The view of one thread posted to the webview: markdown already rendered and sanitised here. */
export interface ThreadView {
  key: string;
  label: string;
  model?: string;
  turns: Array<{ role: 'user' | 'assistant'; html: string; done: boolean; error?: string }>;
}

export function threadView(t: Thread): ThreadView {
  return {
    key: t.key,
    label: t.label,
    model: t.model,
    turns: t.turns.map((x) => ({
      role: x.role,
      // questions are shown as plain text, answers as Markdown
      html: x.role === 'user' ? `<p>${escapeHtml(x.text)}</p>` : renderMarkdown(x.text),
      done: x.done,
      error: x.error,
    })),
  };
}
