#!/usr/bin/env node
// End-to-end driver for opencode-lsp on the node LSP client library that VS Code's client is built on
// (vscode-languageserver-protocol / vscode-jsonrpc). The library is a protocol layer, not an editor, so this
// script plays the editor: it keeps open documents, converts positions between its UTF-16 strings and the
// negotiated position encoding, applies workspace edits (open documents in memory + didChange, other files and
// resource operations on disk, stale versions refused) and answers every server→client request.
//
// Environment:
//   E2E_SERVER        server binary (required)
//   E2E_SERVER_ARGS   JSON array of extra server arguments (optional)
//   E2E_WORKSPACE     workspace folder (required)
//   E2E_SCENARIO      scenario JSON file (required; format in ../README.md)
//   E2E_REPORT        where to write the JSON report (required)
//   E2E_LOG           where to write the message trace (optional)
//   E2E_ENCODING      offer only this position encoding (utf-8, utf-16 or utf-32); default: offer none (UTF-16)
//   E2E_MODE          "never-reply": never answer a server→client request (a client like Vim+ALE)
//   E2E_CAPS          "minimal": advertise only text sync and plain code actions (no codeActionLiteralSupport,
//                     no window/workspace capabilities), like the simplest LSP clients
//   E2E_TIMEOUT_MS    bound for each waiting step and request (default 20000)
//   NODE_PATH         must reach test/tools/node_modules (the pinned library)
// Exit status: 0 when every step ran, 1 when a step failed or timed out (the report says which), 2 on bad usage.
'use strict';
const cp = require('child_process');
const fs = require('fs');
const path = require('path');
const { pathToFileURL, fileURLToPath } = require('url');

const env = process.env;
for (const k of ['E2E_SERVER', 'E2E_WORKSPACE', 'E2E_SCENARIO', 'E2E_REPORT']) {
  if (!env[k]) { console.error(`client.js: ${k} is not set`); process.exit(2); }
}
// the pinned library from test/tools (NODE_PATH), else relative to this file
const libMain = (() => {
  try { return require.resolve('vscode-languageserver-protocol/node'); } catch (e) {
    return require.resolve(path.join(__dirname, '..', '..', 'tools', 'node_modules', 'vscode-languageserver-protocol', 'lib', 'node', 'main.js'));
  }
})();
const P = require(libMain);
let libDir = path.dirname(libMain);
while (path.basename(libDir) !== 'vscode-languageserver-protocol') libDir = path.dirname(libDir);
const libVersion = JSON.parse(fs.readFileSync(path.join(libDir, 'package.json'), 'utf8')).version;

const root = path.resolve(env.E2E_WORKSPACE);
const scenario = JSON.parse(fs.readFileSync(env.E2E_SCENARIO, 'utf8'));
const timeoutMs = Number(env.E2E_TIMEOUT_MS || 20000);
const neverReply = env.E2E_MODE === 'never-reply';
const offered = env.E2E_ENCODING ? [env.E2E_ENCODING] : null;
const t0 = Date.now();

// ---- report
const report = {
  client: { name: 'node vscode-languageserver-protocol', version: libVersion, mode: env.E2E_MODE || 'editor' },
  encoding: null, initializeResult: null, results: {}, diagnostics: {}, publishedDiagnostics: {},
  serverRequests: {}, serverNotifications: {}, progress: [], notifications: {}, showMessages: [],
  showMessageRequests: [], showDocuments: [], applyEdits: [], documents: {}, stepsDone: 0, error: null,
};
const bump = (o, k) => (o[k] = (o[k] || 0) + 1);
const traceLines = [];
const trace = (s) => traceLines.push(`[${((Date.now() - t0) / 1000).toFixed(3)}] ${s}`);
let reportWritten = false;
function writeReport() {
  if (reportWritten) return;
  reportWritten = true;
  for (const [uri, doc] of openDocs) report.documents[rel(uri)] = doc.text;
  report.elapsedMs = Date.now() - t0;
  fs.writeFileSync(env.E2E_REPORT, JSON.stringify(report, null, 2));
  if (env.E2E_LOG) fs.writeFileSync(env.E2E_LOG, traceLines.join('\n') + '\n');
}

// ---- paths, URIs, positions
const uriOf = (f) => pathToFileURL(path.resolve(root, f)).href;
function rel(uri) {
  try {
    const p = path.relative(root, fileURLToPath(uri));
    return p.startsWith('..') ? uri : p.split(path.sep).join('/');
  } catch (e) { return uri; }
}
const languageIds = { go: 'go', ts: 'typescript', js: 'javascript', py: 'python', c: 'c', h: 'c', rs: 'rust', md: 'markdown', json: 'json' };
const languageOf = (f) => languageIds[path.extname(f).slice(1)] || 'plaintext';

// lineStarts returns the UTF-16 offsets at which each line starts (LSP line breaks: \n, \r\n, \r).
function lineStarts(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 && text.charCodeAt(i + 1) === 10) continue;
    if (c === 10 || c === 13) starts.push(i + 1);
  }
  return starts;
}
function lineText(text, starts, line) {
  const s = starts[line];
  let e = line + 1 < starts.length ? starts[line + 1] : text.length;
  while (e > s && (text.charCodeAt(e - 1) === 10 || text.charCodeAt(e - 1) === 13)) e--;
  return text.slice(s, e);
}
// units returns how many units of the negotiated encoding the UTF-16 string s takes.
function units(s) {
  switch (report.encoding) {
    case 'utf-8': return Buffer.byteLength(s, 'utf8');
    case 'utf-32': return [...s].length;
    default: return s.length;
  }
}
// toPosition converts a UTF-16 offset in text to an LSP position in the negotiated encoding.
function toPosition(text, offset) {
  const starts = lineStarts(text);
  let line = starts.length - 1;
  while (starts[line] > offset) line--;
  return { line, character: units(text.slice(starts[line], offset)) };
}
// toOffset converts an LSP position to a UTF-16 offset (a character past the end of the line clamps to it;
// a position inside a UTF-8 sequence or a surrogate pair rounds down to the character's start).
function toOffset(text, pos) {
  const starts = lineStarts(text);
  if (pos.line >= starts.length) return text.length;
  const lt = lineText(text, starts, pos.line);
  let i = 0, n = 0;
  for (const ch of lt) { // iterates code points
    const w = units(ch);
    if (n + w > pos.character) break;
    n += w; i += ch.length;
  }
  return starts[pos.line] + i;
}
function resolveRef(text, ref) {
  if (ref.find === undefined) throw new Error('position reference needs "find": ' + JSON.stringify(ref));
  let at = -1;
  for (let k = 0, from = 0; k < (ref.occurrence || 1); k++, from = at + 1) {
    at = text.indexOf(ref.find, from);
    if (at < 0) throw new Error(`text ${JSON.stringify(ref.find)} not found`);
  }
  return ref.edge === 'start' ? at : at + ref.find.length;
}
function expand(v) { // ${uri:FILE}, ${rootUri}, ${root} in command arguments
  if (typeof v === 'string') {
    return v.replace(/\$\{uri:([^}]+)\}/g, (_, f) => uriOf(f)).replace(/\$\{rootUri\}/g, pathToFileURL(root).href).replace(/\$\{root\}/g, root);
  }
  if (Array.isArray(v)) return v.map(expand);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x)]));
  return v;
}

// ---- server process and connection
let serverArgs = [];
if (env.E2E_SERVER_ARGS) serverArgs = JSON.parse(env.E2E_SERVER_ARGS);
const proc = cp.spawn(env.E2E_SERVER, serverArgs, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
let serverExit = null;
const serverExited = new Promise((res) => proc.on('exit', (code, signal) => { serverExit = { code, signal }; res(); }));
proc.stderr.on('data', (d) => trace('server stderr: ' + String(d).trimEnd()));
proc.on('error', (e) => fail(new Error('cannot start the server: ' + e.message)));
const conn = P.createProtocolConnection(new P.StreamMessageReader(proc.stdout), new P.StreamMessageWriter(proc.stdin));
conn.trace(P.Trace.Verbose, { log: (m, data) => trace(data ? `${m}\n${data}` : m) }, { sendNotification: false, traceFormat: 'text' });
conn.onError(([e]) => trace('connection error: ' + e));
conn.onClose(() => trace('connection closed'));

// ---- documents (the editor's buffers)
const openDocs = new Map(); // uri -> {text, version, languageId}
function sendDidChange(uri) {
  const d = openDocs.get(uri);
  conn.sendNotification(P.DidChangeTextDocumentNotification.type, { textDocument: { uri, version: d.version }, contentChanges: [{ text: d.text }] });
}
function applyTextEdits(text, edits) {
  const spans = edits.map((e, i) => ({ s: toOffset(text, e.range.start), e: toOffset(text, e.range.end), t: e.newText, i }));
  spans.sort((a, b) => b.s - a.s || b.i - a.i); // LSP: edits never overlap; equal starts apply in array order
  for (const x of spans) text = text.slice(0, x.s) + x.t + text.slice(x.e);
  return text;
}

// workspace/applyEdit, like an editor: validate everything first (versions, existence), then apply.
function applyWorkspaceEdit(edit) {
  const ops = [];
  for (const ch of edit.documentChanges || []) {
    if (ch.kind === 'create' || ch.kind === 'rename' || ch.kind === 'delete') { ops.push(ch); continue; }
    const uri = ch.textDocument.uri;
    const d = openDocs.get(uri);
    if (d && ch.textDocument.version != null && ch.textDocument.version !== d.version) {
      return { applied: false, failureReason: `version mismatch for ${rel(uri)}: edit for ${ch.textDocument.version}, buffer at ${d.version}` };
    }
    ops.push({ kind: 'edit', uri, edits: ch.edits });
  }
  for (const [uri, edits] of Object.entries(edit.changes || {})) ops.push({ kind: 'edit', uri, edits });
  const done = [];
  for (const op of ops) {
    if (op.kind === 'create') {
      const f = fileURLToPath(op.uri);
      if (fs.existsSync(f) && !op.options?.overwrite) {
        if (op.options?.ignoreIfExists) { done.push('create(ignored) ' + rel(op.uri)); continue; }
        return { applied: false, failureReason: `${rel(op.uri)} exists`, failedChange: done.length };
      }
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, '');
      done.push('create ' + rel(op.uri));
    } else if (op.kind === 'rename') {
      fs.renameSync(fileURLToPath(op.oldUri), fileURLToPath(op.newUri));
      done.push(`rename ${rel(op.oldUri)} ${rel(op.newUri)}`);
    } else if (op.kind === 'delete') {
      fs.rmSync(fileURLToPath(op.uri), { force: true, recursive: !!op.options?.recursive });
      done.push('delete ' + rel(op.uri));
    } else {
      const d = openDocs.get(op.uri);
      if (d) {
        d.text = applyTextEdits(d.text, op.edits); d.version++;
        sendDidChange(op.uri);
        done.push(`edit(buffer) ${rel(op.uri)} ${op.edits.length}`);
      } else {
        const f = fileURLToPath(op.uri);
        fs.writeFileSync(f, applyTextEdits(fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '', op.edits));
        done.push(`edit(disk) ${rel(op.uri)} ${op.edits.length}`);
      }
    }
  }
  return { applied: true, ops: done };
}

// ---- server→client requests
const never = () => new Promise(() => {});
function onServerRequest(type, answer) {
  conn.onRequest(type, (params) => {
    bump(report.serverRequests, type.method);
    if (neverReply) return never();
    return answer(params);
  });
}
onServerRequest(P.WorkDoneProgressCreateRequest.type, () => null);
onServerRequest(P.ConfigurationRequest.type, (p) => p.items.map((it) => {
  let v = scenario.configuration || {};
  for (const part of (it.section || '').split('.').filter(Boolean)) v = v && typeof v === 'object' ? v[part] : undefined;
  return v === undefined ? null : v;
}));
onServerRequest(P.ApplyWorkspaceEditRequest.type, (p) => {
  let res;
  try { res = applyWorkspaceEdit(p.edit); } catch (e) { res = { applied: false, failureReason: String(e.message) }; }
  report.applyEdits.push({ label: p.label || null, applied: res.applied, failureReason: res.failureReason || null, ops: res.ops || [], edit: p.edit });
  return { applied: res.applied, failureReason: res.failureReason, failedChange: res.failedChange };
});
onServerRequest(P.ShowMessageRequest.type, (p) => {
  const titles = (p.actions || []).map((a) => a.title);
  const rule = (scenario.responses?.showMessageRequest || []).find((r) => !r.match || new RegExp(r.match).test(p.message));
  const chosen = rule && titles.includes(rule.choose) ? rule.choose : null;
  report.showMessageRequests.push({ type: p.type, message: p.message, actions: titles, chosen });
  return chosen ? p.actions.find((a) => a.title === chosen) : null;
});
onServerRequest(P.ShowDocumentRequest.type, (p) => {
  report.showDocuments.push({ uri: p.uri, external: !!p.external, takeFocus: !!p.takeFocus, selection: p.selection || null });
  return { success: true };
});
onServerRequest(P.RegistrationRequest.type, () => null);
onServerRequest(P.UnregistrationRequest.type, () => null);
conn.onRequest((method) => {
  bump(report.serverRequests, method);
  if (neverReply) return never();
  return new P.ResponseError(P.ErrorCodes.MethodNotFound, 'client does not handle ' + method);
});

// ---- server→client notifications
const waiters = new Set(); // functions re-checked after every notification
const kick = () => { for (const w of [...waiters]) w(); };
conn.onNotification(P.PublishDiagnosticsNotification.type, (p) => {
  bump(report.serverNotifications, 'textDocument/publishDiagnostics');
  report.publishedDiagnostics[rel(p.uri)] = p.diagnostics;
  kick();
});
conn.onUnhandledProgress((p) => { // vscode-jsonrpc delivers $/progress for unregistered tokens here, not to onNotification
  bump(report.serverNotifications, '$/progress');
  const v = p.value || {};
  report.progress.push({ token: p.token, kind: v.kind, title: v.title, message: v.message, percentage: v.percentage, cancellable: v.cancellable });
  kick();
});
conn.onNotification(P.ShowMessageNotification.type, (p) => {
  bump(report.serverNotifications, 'window/showMessage');
  report.showMessages.push({ type: p.type, message: p.message });
  kick();
});
conn.onNotification(P.LogMessageNotification.type, () => bump(report.serverNotifications, 'window/logMessage'));
conn.onNotification((method, params) => {
  bump(report.serverNotifications, method);
  (report.notifications[method] = report.notifications[method] || []).push(params);
  kick();
});
conn.listen();

// ---- waiting without sleeps
function waitFor(what, pred, ms = timeoutMs) {
  return new Promise((resolve, reject) => {
    let timer;
    const check = () => {
      let v;
      try { v = pred(); } catch (e) { waiters.delete(check); clearTimeout(timer); reject(e); return; }
      if (v) { waiters.delete(check); clearTimeout(timer); resolve(v); }
    };
    timer = setTimeout(() => { waiters.delete(check); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)); }, ms);
    waiters.add(check);
    check();
  });
}
function request(type, params, what, ms = timeoutMs) {
  let timer;
  const src = new P.CancellationTokenSource();
  return Promise.race([
    conn.sendRequest(type, params, src.token),
    new Promise((_, reject) => { timer = setTimeout(() => { src.cancel(); reject(new Error(`timed out after ${ms} ms waiting for the answer to ${what}`)); }, ms); }),
  ]).finally(() => clearTimeout(timer));
}
const errorOf = (e) => (e instanceof P.ResponseError ? { code: e.code, message: e.message, data: e.data ?? null } : null);

// diagnosticsAsSeen returns the client's view of a file's diagnostics: positions converted back to its own text.
function diagnosticsAsSeen(file) {
  const uri = uriOf(file);
  const text = openDocs.get(uri)?.text ?? (fs.existsSync(fileURLToPath(uri)) ? fs.readFileSync(fileURLToPath(uri), 'utf8') : '');
  const starts = lineStarts(text);
  return (report.publishedDiagnostics[rel(uri)] || []).map((d) => {
    const s = toOffset(text, d.range.start), e = toOffset(text, d.range.end);
    const line = d.range.start.line;
    return {
      line, endLine: d.range.end.line, prefix: line < starts.length ? text.slice(starts[line], s) : '',
      text: text.slice(s, e), message: d.message, severity: d.severity ?? null, source: d.source ?? null, code: d.code ?? null,
    };
  });
}

// ---- steps
const pending = new Map(); // id -> promise of an asynchronous executeCommand
async function step(s) {
  switch (s.op) {
    case 'open': {
      const uri = uriOf(s.file);
      const text = fs.readFileSync(fileURLToPath(uri), 'utf8');
      openDocs.set(uri, { text, version: 1, languageId: languageOf(s.file) });
      conn.sendNotification(P.DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: languageOf(s.file), version: 1, text } });
      return;
    }
    case 'close': {
      const uri = uriOf(s.file);
      openDocs.delete(uri);
      conn.sendNotification(P.DidCloseTextDocumentNotification.type, { textDocument: { uri } });
      return;
    }
    case 'insert': { // type text at a place, as a user would: new version + didChange
      const uri = uriOf(s.file);
      const d = openDocs.get(uri);
      if (!d) throw new Error(`${s.file} is not open`);
      const at = resolveRef(d.text, s.at);
      d.text = d.text.slice(0, at) + s.text + d.text.slice(at); d.version++;
      sendDidChange(uri);
      return;
    }
    case 'save': {
      const uri = uriOf(s.file);
      const d = openDocs.get(uri);
      if (!d) throw new Error(`${s.file} is not open`);
      fs.writeFileSync(fileURLToPath(uri), d.text);
      conn.sendNotification(P.DidSaveTextDocumentNotification.type, { textDocument: { uri }, text: d.text });
      return;
    }
    case 'codeAction': {
      const uri = uriOf(s.file);
      const d = openDocs.get(uri);
      if (!d) throw new Error(`${s.file} is not open`);
      const start = toPosition(d.text, resolveRef(d.text, s.at));
      const end = s.to ? toPosition(d.text, resolveRef(d.text, s.to)) : start;
      const range = { start, end };
      // like an editor: the context carries the diagnostics that touch the range
      const inRange = (r) => !(r.end.line < start.line || (r.end.line === start.line && r.end.character < start.character) ||
        r.start.line > end.line || (r.start.line === end.line && r.start.character > end.character));
      const diagnostics = (report.publishedDiagnostics[rel(uri)] || []).filter((x) => inRange(x.range));
      const res = { range, actions: [] };
      report.results[s.id] = res;
      const actions = await request(P.CodeActionRequest.type, { textDocument: { uri }, range, context: { diagnostics, only: s.only, triggerKind: 1 } }, 'textDocument/codeAction', s.timeoutMs);
      res.actions = (actions || []).map((a) => (typeof a.command === 'string'
        ? { title: a.title, kind: null, isCommand: true, command: { title: a.title, command: a.command, arguments: a.arguments || [] } }
        : { title: a.title, kind: a.kind ?? null, isCommand: false, diagnostics: (a.diagnostics || []).length, command: a.command || null, hasEdit: !!a.edit }));
      if (s.choose) {
        const a = res.actions.find((x) => x.title === s.choose);
        if (!a) throw new Error(`no code action titled ${JSON.stringify(s.choose)}`);
        if (a.command) await execute(res, a.command.command, a.command.arguments, s.timeoutMs);
      }
      return;
    }
    case 'executeCommand': {
      const res = {};
      report.results[s.id] = res;
      const done = execute(res, s.command, expand(s.arguments || []), s.timeoutMs);
      if (s.async) { pending.set(s.id, done); done.catch(() => {}); return; } // answered later: see "await"
      await done;
      return;
    }
    case 'await': {
      if (!pending.has(s.id)) throw new Error(`no asynchronous command ${JSON.stringify(s.id)}`);
      await pending.get(s.id);
      return;
    }
    case 'waitDiagnostics': {
      const f = rel(uriOf(s.file));
      const match = () => (report.publishedDiagnostics[f] || []).filter((x) => !s.source || x.source === s.source);
      await waitFor(`${s.min ?? 1} diagnostic(s)${s.source ? ' from ' + s.source : ''} on ${s.file}`,
        () => report.publishedDiagnostics[f] !== undefined && (s.max !== undefined ? match().length <= s.max : match().length >= (s.min ?? 1)), s.timeoutMs);
      if (s.id) report.results[s.id] = { diagnostics: diagnosticsAsSeen(s.file) };
      return;
    }
    case 'waitNotification': {
      await waitFor(`${s.min ?? 1} ${s.method} notification(s)`, () => (report.serverNotifications[s.method] || 0) >= (s.min ?? 1), s.timeoutMs);
      return;
    }
    case 'waitProgress': { // until a progress of this title (or any) has ended
      await waitFor(`the end of progress ${s.title || ''}`, () => {
        const tokens = new Set(report.progress.filter((p) => p.kind === 'begin' && (!s.title || p.title === s.title)).map((p) => p.token));
        return report.progress.some((p) => p.kind === 'end' && tokens.has(p.token));
      }, s.timeoutMs);
      return;
    }
    default:
      throw new Error(`unknown step op ${JSON.stringify(s.op)}`);
  }
}
async function execute(res, command, args, ms) {
  res.command = command;
  try {
    res.result = await request(P.ExecuteCommandRequest.type, { command, arguments: args }, `workspace/executeCommand ${command}`, ms);
    if (res.result === undefined) res.result = null;
  } catch (e) {
    const re = errorOf(e);
    if (!re) throw e;
    res.error = re;
  }
}

function fail(e) {
  report.error = String(e && e.message || e);
  trace('FAIL: ' + report.error);
  writeReport();
  proc.kill('SIGKILL');
  process.exit(1);
}

async function main() {
  const rootUri = pathToFileURL(root).href;
  let capabilities = {
    window: { workDoneProgress: true, showDocument: { support: true }, showMessage: { messageActionItem: { additionalPropertiesSupport: false } } },
    workspace: {
      applyEdit: true,
      workspaceEdit: { documentChanges: true, resourceOperations: ['create', 'rename', 'delete'], failureHandling: 'abort' },
      configuration: true, workspaceFolders: true,
      didChangeConfiguration: { dynamicRegistration: true },
      executeCommand: { dynamicRegistration: false },
    },
    textDocument: {
      synchronization: { didSave: true, dynamicRegistration: false },
      publishDiagnostics: { relatedInformation: true, versionSupport: true, codeDescriptionSupport: true, dataSupport: true },
      codeAction: {
        codeActionLiteralSupport: { codeActionKind: { valueSet: ['', 'quickfix', 'refactor', 'refactor.extract', 'refactor.inline', 'refactor.rewrite', 'source', 'source.organizeImports'] } },
        isPreferredSupport: true, dataSupport: true, resolveSupport: { properties: ['edit'] },
      },
    },
  };
  if (env.E2E_CAPS === 'minimal') {
    capabilities = { textDocument: { synchronization: { didSave: true }, codeAction: {} } };
    report.client.mode += ' minimal';
  }
  if (offered) capabilities.general = { positionEncodings: offered };
  const init = await request(P.InitializeRequest.type, {
    processId: process.pid, clientInfo: { name: 'opencode-lsp-e2e-node', version: libVersion }, locale: 'en',
    rootUri, rootPath: root, workspaceFolders: [{ uri: rootUri, name: path.basename(root) }], capabilities,
    initializationOptions: scenario.initializationOptions, trace: 'off',
  }, 'initialize');
  report.initializeResult = init;
  report.encoding = init.capabilities.positionEncoding || 'utf-16';
  if (!['utf-8', 'utf-16', 'utf-32'].includes(report.encoding)) throw new Error(`server chose an unknown position encoding ${report.encoding}`);
  conn.sendNotification(P.InitializedNotification.type, {});

  for (const s of scenario.steps) {
    trace(`step ${report.stepsDone + 1}: ${JSON.stringify(s)}`);
    try { await step(s); } catch (e) { throw new Error(`step ${report.stepsDone + 1} (${s.op}${s.id ? ' ' + s.id : ''}): ${e.message}`); }
    report.stepsDone++;
  }
  for (const [uri] of openDocs) report.diagnostics[rel(uri)] = diagnosticsAsSeen(rel(uri));
  for (const f of Object.keys(report.publishedDiagnostics)) if (!report.diagnostics[f]) report.diagnostics[f] = diagnosticsAsSeen(f);

  if (neverReply) {
    // a client that never answers also tends to vanish without a shutdown: the server must exit on stdin EOF
    proc.stdin.end();
  } else {
    await request(P.ShutdownRequest.type, undefined, 'shutdown');
    conn.sendNotification(P.ExitNotification.type);
  }
  await Promise.race([serverExited, new Promise((r) => setTimeout(r, timeoutMs))]);
  report.serverExit = serverExit;
  if (!serverExit) throw new Error(`the server did not exit within ${timeoutMs} ms after ${neverReply ? 'stdin EOF' : 'shutdown + exit'}`);
  writeReport();
  process.exit(0);
}
main().catch(fail);
