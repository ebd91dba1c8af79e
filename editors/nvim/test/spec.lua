-- Headless scenario for the opencode.nvim plugin, run by nvim_test.go on every Neovim it finds:
--   nvim --headless --clean --cmd 'set rtp^=<plugin copy>' -c 'luafile spec.lua'
-- Environment: OC_SERVER (opencode-lsp), OC_ROOT (workspace), OC_REPORT (JSON report path), OC_LOG (server log),
-- OC_QUESTION (what the user types when asked). Every wait is bounded and checks a condition; the report says
-- what happened and the Go test asserts on it.
local server, root, report_path = os.getenv('OC_SERVER'), os.getenv('OC_ROOT'), os.getenv('OC_REPORT')
local has011 = vim.fn.has('nvim-0.11') == 1
local rep = { errors = {}, steps = {}, notifications = {} }
local v = vim.version()
rep.nvim = ('%d.%d.%d'):format(v.major, v.minor, v.patch)

local function step(s) table.insert(rep.steps, s) end
local function wait(ms, pred) return vim.wait(ms, pred, 20) end

local function finish()
  local f = assert(io.open(report_path, 'w'))
  f:write(vim.json.encode(rep))
  f:close()
  for _, c in ipairs((vim.lsp.get_clients or vim.lsp.get_active_clients)()) do
    if has011 then c:stop() else c.stop() end
  end
  wait(3000, function() return #(vim.lsp.get_clients or vim.lsp.get_active_clients)() == 0 end)
  vim.cmd('qall!')
end

local function run(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then table.insert(rep.errors, name .. ': ' .. tostring(err)) end
  return ok
end

-- what a user would do interactively, scripted: type a question, pick a code action
local pick
vim.ui.input = function(opts, on_confirm)
  rep.input_prompts = rep.input_prompts or {}
  table.insert(rep.input_prompts, opts.prompt)
  on_confirm(os.getenv(opts.prompt:find('generate') and 'OC_GENERATE' or 'OC_QUESTION'))
end
-- Neovim 0.12 asks with confirm() before applying an edit whose change annotation needs confirmation: say yes
vim.fn.confirm = function(msg, choices, default)
  rep.confirm = msg
  return 1
end
vim.ui.select = function(items, opts, on_choice)
  local titles = {}
  for _, it in ipairs(items) do table.insert(titles, opts.format_item and opts.format_item(it) or tostring(it)) end
  rep.menus = rep.menus or {}
  table.insert(rep.menus, titles)
  for i, t in ipairs(titles) do
    if t:find(pick, 1, true) then return on_choice(items[i], i) end
  end
  on_choice(nil, nil)
end
local notify = vim.notify
vim.notify = function(msg, level, o)
  table.insert(rep.notifications, { msg = msg, level = level })
  return notify(msg, level, o)
end

-- Neovim's own LSP progress events (what progress plugins and statuslines listen to)
rep.progressEvents = 0
vim.api.nvim_create_autocmd('User', { pattern = 'LspProgressUpdate', callback = function() rep.progressEvents = rep.progressEvents + 1 end })
if vim.fn.exists('##LspProgress') == 1 then
  vim.api.nvim_create_autocmd('LspProgress', { callback = function() rep.progressEvents = rep.progressEvents + 1 end })
end

local oc = require('opencode')
local bufnr, client

local function view_done(label_prefix)
  for _, x in ipairs(oc._views) do
    if x.label:sub(1, #label_prefix) == label_prefix and x.done then return x end
  end
end

local function snapshot(x)
  local win = oc.float_win()
  local lines = x.buf and vim.api.nvim_buf_get_lines(x.buf, 0, -1, false) or {}
  local wcfg = win and vim.api.nvim_win_get_config(win) or {}
  return {
    label = x.label, text = x.text, done = x.done, error = x.error, deltas = x.deltas or 0, thread = x.thread_id,
    buffer = table.concat(lines, '\n'),
    filetype = x.buf and (vim.bo[x.buf].filetype ~= '' and vim.bo[x.buf].filetype or vim.bo[x.buf].syntax) or nil,
    float = win ~= nil and wcfg.relative ~= '' and vim.api.nvim_win_get_buf(win) == x.buf,
  }
end

local ok = run('start', function()
  oc.setup({
    cmd = { server, '--log-level', 'debug', '--log-file', os.getenv('OC_LOG') },
    settings = { run = { timeoutSec = 120 }, generate = { opencodePath = os.getenv('OC_OPENCODE') } },
  })
  vim.cmd('edit ' .. root .. '/main.c')
  bufnr = vim.api.nvim_get_current_buf()
  assert(wait(15000, function()
    client = oc.client(bufnr)
    return client ~= nil and client.initialized ~= false and client.server_capabilities ~= nil
  end), 'the opencode client did not attach')
  rep.client = {
    name = client.name, root_dir = client.config.root_dir, offset_encoding = client.offset_encoding,
    commands = (client.server_capabilities.executeCommandProvider or {}).commands,
    attached = vim.lsp.buf_is_attached(bufnr, client.id),
  }
  step('attached')
end)
if not ok then return finish() end

-- 1. native vim.lsp.buf.code_action(): the server's actions, chosen in Neovim's own menu; the plugin's
--    vim.lsp.commands handler turns Explain into a streamed answer in the float
run('code action: Explain selection', function()
  vim.api.nvim_win_set_cursor(0, { 4, 1 })
  pick = 'OpenCode: Explain selection'
  vim.lsp.buf.code_action()
  assert(wait(15000, function() return view_done('Explain') ~= nil end), 'no explain answer')
  rep.codeActionExplain = snapshot(view_done('Explain'))
  step('code action explain')
end)

-- 2. "Ask about selection…" carries no prompt: the plugin asks with vim.ui.input
run('code action: Ask about selection', function()
  pick = 'OpenCode: Ask about selection'
  vim.lsp.buf.code_action()
  local q = os.getenv('OC_QUESTION')
  assert(wait(15000, function() return view_done(q:sub(1, 20)) ~= nil end), 'no answer to the question')
  rep.codeActionAsk = snapshot(view_done(q:sub(1, 20)))
  step('code action ask')
end)

-- 3. :OpenCodeExplain over a range
run(':OpenCodeExplain', function()
  vim.cmd('3,5OpenCodeExplain')
  assert(wait(15000, function() return view_done('Explain main.c:3-5') ~= nil end), 'no answer for the range')
  rep.explain = snapshot(view_done('Explain main.c:3-5'))
  rep.explainResult = oc._last['opencode.explain'] and oc._last['opencode.explain'].result
  step(':OpenCodeExplain')
end)

-- 3b. :OpenCodeCancel while an answer streams (the fake holds the stream after its first chunk)
run(':OpenCodeCancel', function()
  vim.cmd('OpenCodeAsk Please wait forever')
  assert(wait(15000, function()
    for _, x in ipairs(oc._views) do
      if x.label:find('Please wait forever', 1, true) and x.text ~= '' then return true end
    end
  end), 'the slow answer did not start')
  rep.statuslineRunning = oc.statusline()
  vim.cmd('OpenCodeCancel')
  assert(wait(15000, function() return view_done('Please wait forever') ~= nil end), 'the answer was not cancelled')
  rep.cancelled = snapshot(view_done('Please wait forever'))
  rep.cancelResult = oc._last['opencode.cancel'] and oc._last['opencode.cancel'].result
  step(':OpenCodeCancel')
end)

-- 4. :OpenCodeRun: the project's check in the sandbox; its warning becomes a diagnostic
run(':OpenCodeRun', function()
  local lines = {}
  vim.cmd('OpenCodeRun')
  local seen = oc.statusline()
  if seen ~= '' then table.insert(lines, seen) end
  assert(wait(60000, function()
    local s = oc.statusline()
    if s ~= '' and s ~= lines[#lines] then table.insert(lines, s) end
    return oc._last['opencode.run'] ~= nil
  end), 'opencode.run did not answer')
  rep.statusline = lines
  rep.statuslineAfter = oc.statusline()
  rep.run = oc._last['opencode.run']
  assert(wait(10000, function() return #vim.diagnostic.get(bufnr) > 0 end), 'no diagnostics')
  rep.diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(rep.diagnostics, { lnum = d.lnum, col = d.col, source = d.source, message = d.message,
      severity = d.severity, code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code) })
  end
  step(':OpenCodeRun')
end)

-- 4b. :OpenCodeGenerate without a prompt: asked with vim.ui.input; the real OpenCode agent writes util.h in the
--     sandbox and the file comes back as a workspace edit that Neovim applies (CreateFile + text in a buffer)
if (os.getenv('OC_OPENCODE') or '') ~= '' then
  run(':OpenCodeGenerate', function()
    vim.cmd('OpenCodeGenerate')
    assert(wait(120000, function() return oc._last['opencode.generate'] ~= nil end), 'opencode.generate did not answer')
    rep.generate = oc._last['opencode.generate']
    local hb = vim.fn.bufnr(root .. '/util.h')
    rep.generatedBuffer = hb > 0 and table.concat(vim.api.nvim_buf_get_lines(hb, 0, -1, false), '\n') or vim.NIL
    rep.generatedModified = hb > 0 and vim.bo[hb].modified or vim.NIL
    vim.cmd('silent! wall')
    local g = view_done('Generate')
    rep.generateView = g and snapshot(g) or vim.NIL
    step(':OpenCodeGenerate')
  end)
end

-- 5. :OpenCodeStatus
run(':OpenCodeStatus', function()
  vim.cmd('OpenCodeStatus')
  assert(wait(10000, function() return oc._last['opencode.status'] ~= nil end), 'no status')
  rep.status = oc._last['opencode.status']
  step(':OpenCodeStatus')
end)

-- 6. :checkhealth opencode
run(':checkhealth', function()
  vim.cmd('checkhealth opencode')
  rep.health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  step(':checkhealth')
end)

-- 7. :help opencode (tags generated the way a plugin manager does)
run(':help', function()
  -- Debian's sid neovim .debs as test/e2e/install.sh unpacks them come without the vimdoc tree-sitter parser
  -- that runtime/ftplugin/help.lua asserts; the help file itself does not need it
  if vim.fn.has('nvim-0.10') == 1 then vim.cmd('filetype plugin off') end
  vim.cmd('helptags ' .. vim.fn.fnameescape(os.getenv('OC_DOC')))
  vim.cmd('help opencode')
  rep.help = { file = vim.api.nvim_buf_get_name(0), line = vim.api.nvim_get_current_line(), buftype = vim.bo.buftype }
  vim.cmd('help :OpenCodeRun')
  rep.helpRun = vim.api.nvim_get_current_line()
  step(':help')
end)

finish()
