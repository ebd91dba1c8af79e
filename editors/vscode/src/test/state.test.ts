import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { StatusModel } from '../status';
import { Transcript } from '../transcript';
import { serverEnvironment, serverSection } from '../settings';

test('status bar: idle, starting, running work (click cancels), several runs, back to idle', () => {
  const s = new StatusModel();
  assert.equal(s.view().command, 'opencode-lsp.showLog');
  assert.match(s.view().text, /loading~spin/);
  s.setServer('running');
  assert.deepEqual(s.view(), { text: '$(sparkle) OpenCode', tooltip: 'OpenCode is ready — click for status', command: 'opencode-lsp.showStatus' });
  const a = s.start('Explain main.go:3');
  assert.equal(s.view().text, '$(sync~spin) OpenCode: Explain main.go:3');
  assert.equal(s.view().command, 'opencode-lsp.cancel');
  const b = s.start('Run in sandbox');
  assert.deepEqual(s.ids(), [a, b]);
  assert.equal(s.view().text, '$(sync~spin) OpenCode: Explain main.go:3 (+1)');
  s.attachRun(b, 'run-7');
  s.attachRun(b, 'run-8'); // the first runId sticks
  assert.deepEqual(s.runIds(), ['run-7']);
  assert.match(s.view().tooltip, /Run in sandbox \[run-7\]/);
  s.finish(a);
  assert.equal(s.view().text, '$(sync~spin) OpenCode: Run in sandbox');
  s.finish(b);
  s.finish(b); // twice is harmless
  assert.equal(s.running, 0);
  assert.equal(s.view().command, 'opencode-lsp.showStatus');
});

test('status bar: a missing server shows an error that opens the log', () => {
  const s = new StatusModel();
  s.setServer('missing', 'install it with go install');
  s.start('Explain'); // even with work queued, the error wins
  const v = s.view();
  assert.equal(v.severity, 'error');
  assert.equal(v.command, 'opencode-lsp.showLog');
  assert.match(v.tooltip, /not found.*go install/);
  s.setServer('stopped');
  assert.equal(s.view().command, 'opencode-lsp.cancel');
});

test('transcript: deltas stream into the pending answer, the result is authoritative', () => {
  const t = new Transcript();
  const k = t.begin('Explain main.go:3', 'Explain main.go:3');
  assert.equal(t.delta({ threadId: 'th1', runId: 'r1', delta: 'Short ' }), k);
  t.delta({ threadId: 'th1', runId: 'r1', delta: 'answer' });
  assert.equal(t.answer(k), 'Short answer');
  assert.equal(t.get(k)!.threadId, 'th1');
  t.finish(k, { threadId: 'th1', text: 'Short answer.', model: 'm' });
  assert.equal(t.answer(k), 'Short answer.');
  assert.equal(t.get(k)!.turns[1].done, true);
  // a follow-up in the same thread appends turns to it
  const k2 = t.begin('ignored', 'and then?', 'th1');
  assert.equal(k2, k);
  t.delta({ threadId: 'th1', runId: 'r2', delta: 'Then.' });
  assert.equal(t.answer(k), 'Then.');
  assert.equal(t.get(k)!.turns.length, 4);
});

test('transcript: two requests at once take threads in start order; unknown threads get their own', () => {
  const t = new Transcript();
  const a = t.begin('A', 'a?');
  const b = t.begin('B', 'b?');
  t.delta({ threadId: 'x', runId: 'r1', delta: '1' });
  t.delta({ threadId: 'y', runId: 'r2', delta: '2' });
  assert.equal(t.answer(a), '1');
  assert.equal(t.answer(b), '2');
  const c = t.delta({ threadId: 'z', runId: 'r3', delta: 'from elsewhere' });
  assert.notEqual(c, a);
  assert.equal(t.get(c)!.label, 'Answer');
  t.fail(b, 'Cancelled.');
  assert.equal(t.get(b)!.turns[1].error, 'Cancelled.');
  t.fail(b, 'again'); // nothing pending: no change
  assert.equal(t.get(b)!.turns[1].error, 'Cancelled.');
});

test('server section: only what the user set, no client-only keys, no API keys, answers none', () => {
  const s = serverSection({
    path: '/x/opencode-lsp', serverArgs: ['-v'], serverEnv: { PATH: '/p' }, 'trace.server': 'verbose',
    sandbox: 'e2b', 'run.timeoutSec': 60, 'run.network': false, 'openrouter.model': 'm', 'openrouter.apiKey': 'sk-secret', 'e2b.domain': null,
  });
  assert.deepEqual(s, { sandbox: 'e2b', run: { timeoutSec: 60, network: false }, openrouter: { model: 'm' }, answers: 'none' });
  assert.deepEqual(serverSection({}), { answers: 'none' });
});

test('server environment: secrets become the services env vars; keys in serverEnv are refused', () => {
  const { env, ignored } = serverEnvironment(
    { PATH: '/usr/bin', HOME: '/h', UNSET: undefined },
    { PATH: '/usr/local/go/bin:/usr/bin', OPENROUTER_API_KEY: 'sk-from-settings', e2b_api_key: 'x', OPENROUTER_BASE_URL: 'http://127.0.0.1:1/api/v1', N: 3 },
    { openrouter: 'sk-secret', daytona: '' },
  );
  assert.deepEqual(env, { PATH: '/usr/local/go/bin:/usr/bin', HOME: '/h', OPENROUTER_BASE_URL: 'http://127.0.0.1:1/api/v1', OPENROUTER_API_KEY: 'sk-secret' });
  assert.deepEqual(ignored, ['OPENROUTER_API_KEY', 'e2b_api_key']);
  // no secret stored: the key from the editor's own environment still reaches the server
  assert.equal(serverEnvironment({ OPENROUTER_API_KEY: 'sk-env' }, {}, {}).env.OPENROUTER_API_KEY, 'sk-env');
});
