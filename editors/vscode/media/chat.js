// OpenCode chat panel (webview side). The extension posts each thread with
// its answers already rendered to sanitised HTML (no raw HTML from the model,
// safe links only); this script only places it. The page's Content Security
// Policy allows no other script, so nothing in an answer can run.
(function () {
  'use strict';
  const vscode = acquireVsCodeApi();
  const root = document.getElementById('threads');
  const empty = document.getElementById('empty');

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function threadNode(key) {
    let node = document.getElementById('thread-' + key);
    if (node) return node;
    node = el('section', 'thread');
    node.id = 'thread-' + key;
    node.dataset.key = key;
    const head = el('header', 'label');
    const turns = el('div', 'turns');
    const form = el('form', 'followup');
    const input = el('textarea');
    input.rows = 1;
    input.placeholder = 'Ask a follow-up question…';
    input.setAttribute('aria-label', 'Follow-up question');
    const send = el('button', '', 'Ask');
    send.type = 'submit';
    form.append(input, send);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const prompt = input.value.trim();
      if (!prompt) return;
      input.value = '';
      vscode.postMessage({ type: 'ask', key, prompt });
    });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    node.append(head, turns, form);
    root.append(node);
    return node;
  }

  function render(t) {
    if (empty) empty.remove();
    const node = threadNode(t.key);
    node.querySelector('.label').textContent = t.label + (t.model ? ' · ' + t.model : '');
    const turns = node.querySelector('.turns');
    turns.replaceChildren();
    let busy = false;
    for (const turn of t.turns) {
      const d = el('div', 'turn ' + turn.role + (turn.done ? '' : ' streaming'));
      d.innerHTML = turn.html; // produced by the extension's sanitising renderer
      if (turn.error) d.append(el('p', 'error', turn.error));
      if (!turn.done) {
        busy = true;
        const cancel = el('button', 'cancel', 'Cancel');
        cancel.type = 'button';
        cancel.addEventListener('click', () => vscode.postMessage({ type: 'cancel' }));
        d.append(cancel);
      }
      turns.append(d);
    }
    node.classList.toggle('busy', busy);
    node.scrollIntoView({ block: 'end' });
  }

  window.addEventListener('message', (ev) => {
    const m = ev.data;
    if (m && m.type === 'thread' && m.thread) render(m.thread);
  });
  vscode.postMessage({ type: 'ready' });
})();
