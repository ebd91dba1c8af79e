import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { expandPath, findServer, INSTALL_HINT } from '../binary';

const env = (files: string[], vars: Record<string, string> = {}, workspaceFolder?: string) => ({
  env: vars,
  homedir: '/home/u',
  platform: 'linux' as NodeJS.Platform,
  workspaceFolder,
  isExecutable: (p: string) => files.includes(p),
});

test('a configured path wins, with ~ and ${workspaceFolder} expanded', () => {
  assert.deepEqual(findServer('~/bin/opencode-lsp', env(['/home/u/bin/opencode-lsp'], { PATH: '/usr/bin' })), { ok: true, path: '/home/u/bin/opencode-lsp', source: 'setting' });
  assert.deepEqual(findServer('${workspaceFolder}/bin/opencode-lsp', env(['/ws/bin/opencode-lsp'], {}, '/ws')), { ok: true, path: '/ws/bin/opencode-lsp', source: 'setting' });
  assert.deepEqual(findServer('bin/opencode-lsp', env(['/ws/bin/opencode-lsp'], {}, '/ws')), { ok: true, path: '/ws/bin/opencode-lsp', source: 'setting' });
});

test('a configured path that does not exist is an error, not a silent fallback to PATH', () => {
  const r = findServer('/opt/nope/opencode-lsp', env(['/usr/bin/opencode-lsp'], { PATH: '/usr/bin' }));
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.match(r.message, /opencode\.path is set to "\/opt\/nope\/opencode-lsp"/);
    assert.ok(r.message.includes(INSTALL_HINT));
  }
});

test('search order: PATH, then GOBIN, GOPATH/bin, ~/go/bin', () => {
  const all = ['/usr/local/bin/opencode-lsp', '/gobin/opencode-lsp', '/gp1/bin/opencode-lsp', '/home/u/go/bin/opencode-lsp'];
  const vars = { PATH: '/usr/bin:/usr/local/bin', GOBIN: '/gobin', GOPATH: '/gp0:/gp1' };
  assert.deepEqual(findServer('', env(all, vars)), { ok: true, path: '/usr/local/bin/opencode-lsp', source: 'PATH' });
  assert.deepEqual(findServer(undefined, env(all.slice(1), vars)), { ok: true, path: '/gobin/opencode-lsp', source: 'GOBIN' });
  assert.deepEqual(findServer('  ', env(all.slice(2), vars)), { ok: true, path: '/gp1/bin/opencode-lsp', source: 'GOPATH' });
  assert.deepEqual(findServer('', env(all.slice(3), vars)), { ok: true, path: '/home/u/go/bin/opencode-lsp', source: 'home' });
});

test('missing everywhere: the message says how to install and lists what was searched once each', () => {
  const r = findServer('', env([], { PATH: '/usr/bin::/usr/bin', GOPATH: '/home/u/go' }));
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.match(r.message, /go install github\.com\/opencode-lsp\/opencode-lsp\/cmd\/opencode-lsp@latest/);
    assert.deepEqual(r.searched, ['/usr/bin/opencode-lsp', '/home/u/go/bin/opencode-lsp']);
  }
});

test('windows looks for opencode-lsp.exe on a ;-separated PATH', () => {
  const e = { ...env(['C:\\tools/opencode-lsp.exe'], { PATH: 'C:\\x;C:\\tools' }), platform: 'win32' as NodeJS.Platform };
  const r = findServer('', e);
  assert.equal(r.ok, true);
});

test('expandPath leaves other text alone', () => {
  assert.equal(expandPath(' /a/~b ', { homedir: '/h' }), '/a/~b');
  assert.equal(expandPath('~', { homedir: '/h' }), '/h');
  assert.equal(expandPath('${userHome}/x', { homedir: '/h' }), '/h/x');
});
