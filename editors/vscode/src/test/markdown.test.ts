import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { escapeHtml, renderMarkdown } from '../markdown';
import { chatHtml, contentSecurityPolicy, threadView } from '../webview';
import { Transcript } from '../transcript';

test('markdown renders code, lists and safe links', () => {
  const html = renderMarkdown('**Short answer:** see `x`\n\n- one\n- two\n\n```go\nfunc main() {}\n```\n\n[docs](https://go.dev/doc)');
  assert.match(html, /<strong>Short answer:<\/strong>/);
  assert.match(html, /<code>x<\/code>/);
  assert.match(html, /<li>one<\/li>/);
  assert.match(html, /<pre><code class="language-go">func main\(\) \{\}\n<\/code><\/pre>/);
  assert.match(html, /<a href="https:\/\/go\.dev\/doc" rel="noopener noreferrer" title="https:\/\/go\.dev\/doc">docs<\/a>/);
});

test('raw HTML from the model is escaped, never passed through', () => {
  for (const evil of ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '<iframe src="https://evil"></iframe>', '<a href="javascript:alert(1)">x</a>', '<svg onload=alert(1)>']) {
    const html = renderMarkdown('before ' + evil + ' after');
    assert.ok(!/<(script|img|iframe|svg)\b/i.test(html) && !/href="(?!https:)/.test(html), `${evil} -> ${html}`);
    assert.ok(html.includes('&lt;'), html);
  }
  const block = renderMarkdown('<div onclick="x()">\n<script>steal()</script>\n</div>');
  assert.ok(!/<(div|script)\b/.test(block), block);
});

test('only http(s) and mailto links become links', () => {
  for (const bad of ['javascript:alert(1)', 'JAVASCRIPT:alert(1)', 'vbscript:x', 'data:text/html,<script>x</script>', 'file:///etc/passwd', 'command:workbench.action.quit', 'vscode://x', '/relative']) {
    const html = renderMarkdown(`[click](${bad})`);
    assert.ok(!html.includes('<a '), `${bad} -> ${html}`);
  }
  assert.match(renderMarkdown('[m](mailto:a@b.c)'), /<a href="mailto:a@b\.c"/);
  assert.match(renderMarkdown('see https://example.com/x'), /<a href="https:\/\/example\.com\/x"/);
});

test('images never load: they become links (or text for unsafe URLs)', () => {
  const html = renderMarkdown('![tracker](https://evil.example/pixel.png) ![x](javascript:alert(1))');
  assert.ok(!html.includes('<img'), html);
  assert.match(html, /<a href="https:\/\/evil\.example\/pixel\.png"[^>]*>\[image: tracker\]<\/a>/);
});

test('partial markdown while streaming renders without throwing', () => {
  for (const partial of ['```go\nfunc', '**bold', '[link](https://exa', '| a | b |\n|---', '<scr', '- item\n  ']) {
    const html = renderMarkdown(partial);
    assert.equal(typeof html, 'string');
    assert.ok(!/<script/i.test(html));
  }
});

test('escapeHtml escapes the five specials', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});

test('CSP: only the nonce script and the extension stylesheet; no inline, eval or remote', () => {
  const csp = contentSecurityPolicy('https://webview.src', 'N0nce');
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'nonce-N0nce'(;|$)/);
  assert.match(csp, /style-src https:\/\/webview\.src(;|$)/);
  assert.ok(!/unsafe-inline|unsafe-eval|\*|https?:(?!\/\/webview\.src)/.test(csp), csp);
  const html = chatHtml({ cspSource: 'https://webview.src', nonce: 'N0nce', scriptUri: 'https://webview.src/chat.js', styleUri: 'https://webview.src/chat.css' });
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;;/);
  assert.match(html, /<script nonce="N0nce" src="https:\/\/webview\.src\/chat\.js"><\/script>/);
  assert.equal((html.match(/<script/g) ?? []).length, 1);
});

test('thread view: questions as escaped text, answers as sanitised markdown', () => {
  const t = new Transcript();
  const key = t.begin('Ask', '<b>why</b>?');
  t.delta({ threadId: 'th1', runId: 'r1', delta: '**because** <script>x()</script>' });
  const v = threadView(t.get(key)!);
  assert.equal(v.turns[0].html, '<p>&lt;b&gt;why&lt;/b&gt;?</p>');
  assert.match(v.turns[1].html, /<strong>because<\/strong> &lt;script&gt;/);
  assert.equal(v.turns[1].done, false);
});
