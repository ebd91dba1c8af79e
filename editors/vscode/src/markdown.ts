// Markdown → HTML for the chat panel. Model output is untrusted: raw HTML is
// never passed through (markdown-it escapes it), links are kept only for
// http(s) and mailto, and images become links, so an answer can neither run
// script nor make the webview load anything. The panel's Content Security
// Policy (chat.ts) forbids inline script as a second line of defence.
import MarkdownIt = require('markdown-it');

const SAFE_LINK = /^(https?:|mailto:)/i;

function create(): MarkdownIt {
  const md = new MarkdownIt({ html: false, linkify: true, typographer: false, breaks: false });
  md.validateLink = (url: string) => SAFE_LINK.test(url.trim());
  const defaultLinkOpen =
    md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
  md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    tokens[idx].attrSet('rel', 'noopener noreferrer');
    tokens[idx].attrSet('title', tokens[idx].attrGet('href') ?? '');
    return defaultLinkOpen(tokens, idx, options, env, self);
  };
  // An image would make the webview fetch a URL chosen by the model: show a link instead.
  md.renderer.rules.image = (tokens, idx) => {
    const t = tokens[idx];
    const src = t.attrGet('src') ?? '';
    const alt = md.utils.escapeHtml(t.content || src);
    return SAFE_LINK.test(src)
      ? `<a href="${md.utils.escapeHtml(src)}" rel="noopener noreferrer" title="${md.utils.escapeHtml(src)}">[image: ${alt}]</a>`
      : `[image: ${alt}]`;
  };
  return md;
}

const md = create();

/**
 * renderMarkdown renders (possibly partial, still streaming) Markdown to an
 * HTML fragment that is safe to put into the chat panel's DOM.
 */
export function renderMarkdown(text: string): string {
  return md.render(text);
}

/** escapeHtml escapes text for an HTML text node or a quoted attribute. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
