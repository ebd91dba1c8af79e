// Test-only extension: drives the OpenCode extension the way a user does — its palette commands, its code actions,
// its secret storage — inside real VS Code (code-server), and writes what happened to $E2E_OUT as JSON for
// editors/vscode/test/e2e_test.go. Every wait is bounded and checks a condition.
'use strict';
const vscode = require('vscode');
const fs = require('fs');
const path = require('path');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, ms = 30000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(50);
  }
}
const diagJSON = (d) => ({
  message: d.message, source: d.source, code: typeof d.code === 'object' ? d.code.value : d.code,
  severity: ['error', 'warning', 'information', 'hint'][d.severity],
  range: { start: { line: d.range.start.line, character: d.range.start.character }, end: { line: d.range.end.line, character: d.range.end.character } },
});

exports.activate = async function () {
  const OUT = process.env.E2E_OUT;
  if (!OUT) return;
  const res = { vscode: vscode.version, errors: [], steps: [] };
  const step = (s) => res.steps.push(`${new Date().toISOString()} ${s}`);
  try {
    const ext = vscode.extensions.getExtension('opencode-lsp.opencode-lsp');
    if (!ext) throw new Error('the OpenCode extension is not installed');
    const api = await ext.activate();
    res.extension = { id: ext.id, version: ext.packageJSON.version, path: ext.extensionPath };
    step('extension active');
    const all = await vscode.commands.getCommands(true);
    res.extensionCommands = all.filter((c) => c.startsWith('opencode-lsp.')).sort();

    // the key goes in through the extension's own command, like a user typing it into the password box
    const key = fs.readFileSync(process.env.E2E_KEY_FILE, 'utf8').trim();
    res.setApiKey = await vscode.commands.executeCommand('opencode-lsp.setApiKey', { service: 'openrouter', key });
    await api.ready();
    step('server running after setApiKey');
    res.serverPath = api.serverPath;
    const init = api.client.initializeResult;
    res.server = init.serverInfo;
    res.serverCommands = (init.capabilities.executeCommandProvider || {}).commands || [];
    res.serverCommandsRegistered = (await vscode.commands.getCommands(true)).filter((c) => /^opencode\.[a-z]+$/.test(c)).sort();

    const folder = vscode.workspace.workspaceFolders[0].uri;
    const mainUri = vscode.Uri.joinPath(folder, 'main.go');
    const doc = await vscode.workspace.openTextDocument(mainUri);
    const editor = await vscode.window.showTextDocument(doc, vscode.ViewColumn.One);
    const text = doc.getText();
    const start = doc.positionAt(text.indexOf('func main'));
    const end = doc.positionAt(text.lastIndexOf('}') + 1);
    editor.selection = new vscode.Selection(start, end);

    // code actions, as the lightbulb asks for them
    // (the first request may come before the client has synced the new document: wait for a non-empty answer)
    const acts = await waitFor('code actions', async () => {
      const a = await vscode.commands.executeCommand('vscode.executeCodeActionProvider', mainUri, new vscode.Range(start, end));
      return a && a.length ? a : null;
    }, 15000).catch(() => []);
    res.codeActions = (acts || []).map((a) => ({ title: a.title, kind: a.kind && a.kind.value, command: a.command && (a.command.command || a.command.id) }));
    step('code actions listed');

    // Explain Selection from the palette: the answer streams into the chat panel
    res.explain = await vscode.commands.executeCommand('opencode-lsp.explainSelection');
    res.transcript = api.transcript();
    step('explain answered');

    // the lightbulb's "Ask about selection…": the server's command without a prompt; the extension's middleware asks
    // for the question in an input box (the browser side types it) and the answer streams into the panel
    const askAction = (acts || []).find((a) => a.title === 'OpenCode: Ask about selection…');
    if (askAction && askAction.command) {
      res.codeActionAsk = await vscode.commands.executeCommand(askAction.command.command, ...(askAction.command.arguments || []));
      step('code action ask answered');
    }

    // Cancel: while an answer is streaming, the status bar shows the work and its click (opencode-lsp.cancel) stops it
    const slow = vscode.commands.executeCommand('opencode-lsp.ask', { prompt: 'Please wait forever' });
    await waitFor('the slow answer to start streaming',
      () => api.transcript().some((t) => t.label.startsWith('Please wait forever') && t.answer !== ''));
    res.statusWhileRunning = api.statusBar();
    res.cancel = await vscode.commands.executeCommand(res.statusWhileRunning.command);
    res.slowResult = (await slow) ?? null;
    res.statusAfterCancel = api.statusBar();
    res.slowThread = api.transcript().find((t) => t.label.startsWith('Please wait forever'));
    step('cancelled');

    // Run in Sandbox: the project's check runs in the sandbox, its problems come back as diagnostics
    if (res.serverCommands.includes('opencode.run')) {
      res.run = await vscode.commands.executeCommand('opencode-lsp.runInSandbox');
      const diags = await waitFor('opencode diagnostics on main.go',
        () => { const d = vscode.languages.getDiagnostics(mainUri).filter((x) => x.source === 'opencode'); return d.length ? d : null; });
      res.diagnostics = diags.map(diagJSON);
      step('run diagnostics');
      // show the problem for the screenshot: Problems panel open, cursor on the squiggle
      await vscode.commands.executeCommand('workbench.actions.view.problems');
      await vscode.window.showTextDocument(doc, vscode.ViewColumn.One, false);
      const at = diags[0].range.start;
      editor.selection = new vscode.Selection(at, at);
      editor.revealRange(diags[0].range);
    } else {
      res.run = { skipped: 'the server does not offer opencode.run' };
    }
    // Ask…: opencode.ask routes a question to chat; the answer is a second thread in the panel
    if (res.serverCommands.includes('opencode.ask')) {
      res.ask = await vscode.commands.executeCommand('opencode-lsp.ask', { prompt: 'What does this code do?' });
      step('ask answered');
    }

    // Generate…: the agent writes a file in the sandbox; it arrives as one workspace edit that VS Code shows in its
    // refactor preview (opencode.generate.needsConfirmation is on by default) — the browser side presses Apply
    if (process.env.E2E_GENERATE && res.serverCommands.includes('opencode.generate')) {
      res.generate = await vscode.commands.executeCommand('opencode-lsp.generate', { prompt: process.env.E2E_GENERATE });
      // VS Code creates the file on disk and puts its text into a (dirty) editor, like any refactoring: save it
      const created = vscode.Uri.joinPath(folder, 'main_test.go');
      const gdoc = await vscode.workspace.openTextDocument(created);
      res.generatedBuffer = { text: gdoc.getText(), dirty: gdoc.isDirty };
      await gdoc.save();
      res.generatedFile = fs.existsSync(created.fsPath) ? fs.readFileSync(created.fsPath, 'utf8') : null;
      res.mainAfterGenerate = fs.readFileSync(mainUri.fsPath, 'utf8');
      step('generate applied');
      // back to the view of the screenshot: main.go with its problem, the chat panel beside it
      await vscode.commands.executeCommand('workbench.actions.view.problems');
      await vscode.window.showTextDocument(doc, vscode.ViewColumn.One, false);
    }
    res.transcriptFinal = api.transcript();
    res.allDiagnostics = vscode.languages.getDiagnostics().filter(([, ds]) => ds.length)
      .map(([u, ds]) => ({ file: path.basename(u.fsPath), diagnostics: ds.map(diagJSON) }));
    res.settingsHasKey = null;
  } catch (e) {
    res.errors.push(String((e && e.stack) || e));
  }
  fs.writeFileSync(OUT + '.tmp', JSON.stringify(res, null, 2));
  fs.renameSync(OUT + '.tmp', OUT);
  // keep the window as it is until the browser side has checked the chat panel and taken its screenshot
  const done = process.env.E2E_DONE;
  if (done) {
    const end = Date.now() + 60000;
    while (!fs.existsSync(done) && Date.now() < end) await sleep(100);
  }
};
exports.deactivate = () => {};
