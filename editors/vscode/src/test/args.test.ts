import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as A from '../args';

const uri = 'file:///ws/main.go';
const cursor = { start: { line: 4, character: 2 }, end: { line: 4, character: 2 } };
const sel = { start: { line: 2, character: 0 }, end: { line: 5, character: 1 } };

test('explain sends the selection, or no range for a cursor (whole file)', () => {
  assert.deepEqual(A.explainArgs({ uri, selection: sel }), { uri, range: sel });
  assert.deepEqual(A.explainArgs({ uri, selection: cursor }), { uri });
  assert.deepEqual(A.explainArgs({ uri }), { uri });
});

test('explain copies the range: a later change to the editor selection does not leak in', () => {
  const s = { start: { line: 1, character: 0 }, end: { line: 2, character: 0 } };
  const a = A.explainArgs({ uri, selection: s });
  s.end.line = 9;
  assert.equal(a.range!.end.line, 2);
});

test('chat trims the prompt, carries the thread, and omits what is unknown', () => {
  assert.deepEqual(A.chatArgs('  why?  ', { uri, selection: sel }, 'th-1'), { prompt: 'why?', uri, range: sel, threadId: 'th-1' });
  assert.deepEqual(A.chatArgs('why?'), { prompt: 'why?' });
  assert.deepEqual(A.chatArgs('why?', { uri, selection: cursor }), { prompt: 'why?', uri });
  // JSON must not hold undefined members the server would see as fields
  assert.equal(JSON.stringify(A.chatArgs('x', { uri })), '{"prompt":"x","uri":"file:///ws/main.go"}');
});

test('ask and generate build the contract shapes', () => {
  assert.deepEqual(A.askArgs('add a test', { uri, selection: sel }), { prompt: 'add a test', uri, range: sel });
  assert.deepEqual(A.generateArgs('add a test', { uri, selection: cursor }, 'e2b'), { prompt: 'add a test', uri, sandbox: 'e2b' });
  assert.deepEqual(A.generateArgs('x'), { prompt: 'x' });
});

test('run: empty command means "detect", timeout is a positive integer', () => {
  assert.deepEqual(A.runArgs(), {});
  assert.deepEqual(A.runArgs({ command: '  ', uri }), { uri });
  assert.deepEqual(A.runArgs({ command: ' go vet ./... ', timeoutSec: 30.7, sandbox: 'local' }), { command: 'go vet ./...', timeoutSec: 30, sandbox: 'local' });
  assert.deepEqual(A.runArgs({ timeoutSec: -1 }), {});
});

test('code actions without a prompt are intercepted; others pass', () => {
  assert.equal(A.needsPrompt('opencode.chat', { uri, range: sel }), true);
  assert.equal(A.needsPrompt('opencode.chat', { prompt: '  ' }), true);
  assert.equal(A.needsPrompt('opencode.chat', { prompt: 'why?' }), false);
  assert.equal(A.needsPrompt('opencode.generate', { uri }), true);
  assert.equal(A.needsPrompt('opencode.generate', { prompt: 'Fix: x' }), false);
  assert.equal(A.needsPrompt('opencode.explain', { uri }), false);
  assert.equal(A.needsPrompt('opencode.run', undefined), false);
  assert.equal(A.needsPrompt('opencode.chat', undefined), true);
});

test('labels name the command, the file and the lines', () => {
  assert.equal(A.describe('opencode.explain', { uri, range: sel }), 'Explain main.go:3-6');
  assert.equal(A.describe('opencode.explain', { uri: 'file:///ws/a%20b.go' }), 'Explain a b.go');
  // a selection ending at column 0 of the next line covers the lines before it
  assert.equal(A.describe('opencode.explain', { uri, range: { start: { line: 2, character: 0 }, end: { line: 3, character: 0 } } }), 'Explain main.go:3');
  assert.equal(A.describe('opencode.chat', { prompt: 'why?', uri }), 'why? (main.go)');
  assert.equal(A.describe('opencode.chat', { uri, range: sel }), 'Ask about main.go:3-6');
  assert.equal(A.describe('opencode.run', {}), 'Run in sandbox');
  assert.equal(A.describe('opencode.run', { command: 'go vet ./...' }), 'Run go vet ./...');
  assert.match(A.describe('opencode.generate', { prompt: 'x'.repeat(100) }), /^Generate: x{39}…$/);
  assert.equal(A.describe('opencode.status', {}), 'status');
});
