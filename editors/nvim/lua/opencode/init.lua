-- opencode.nvim: the Neovim front-end of opencode-lsp (AI chat through OpenRouter, a sandboxed coding agent).
--
-- The server is a plain LSP server: code actions work with vim.lsp.buf.code_action() and no plugin code. This
-- module adds what makes it pleasant: commands with range support, answers streamed into a floating Markdown
-- window from opencode/chatDelta, a prompt for code actions that need one, progress in the statusline, and
-- :checkhealth. Works on Neovim 0.7.2 through 0.12 (vim.lsp.config/enable on 0.11+, vim.lsp.start on 0.8+,
-- vim.lsp.start_client on 0.7).
local M = {}

local uv = vim.uv or vim.loop
local has = function(v) return vim.fn.has('nvim-' .. v) == 1 end

--- The editor contract's command names (lsp/command/command.go).
M.commands = {
  chat = 'opencode.chat',
  explain = 'opencode.explain',
  generate = 'opencode.generate',
  run = 'opencode.run',
  ask = 'opencode.ask',
  cancel = 'opencode.cancel',
  status = 'opencode.status',
}

M.install_hint = 'install it with `go install github.com/opencode-lsp/opencode-lsp/cmd/opencode-lsp@latest`,'
  .. ' or set cmd in require("opencode").setup{}'

local defaults = {
  -- the server command; nil: `opencode-lsp` on PATH, else in $GOBIN, $GOPATH/bin, ~/go/bin
  cmd = nil,
  -- extra environment for the server (e.g. OPENROUTER_BASE_URL); API keys are read from the environment
  cmd_env = nil,
  -- files that mark a project root (the first found upwards from the file); none found: the file's directory
  root_markers = { '.git', 'go.mod', 'package.json', 'Cargo.toml', 'pyproject.toml', 'Makefile', '.hg' },
  -- filetypes to attach to; nil: every file
  filetypes = nil,
  -- the `opencode` settings section (see :help opencode-settings); `answers` is always "none" (this plugin
  -- renders answers itself)
  settings = {},
  -- start the server for every file automatically
  autostart = true,
  -- the answer window
  float = { border = 'rounded', max_width = 100, max_height = 30 },
}

M.config = vim.deepcopy(defaults)

local function notify(msg, level)
  vim.notify('OpenCode: ' .. msg, level or vim.log.levels.INFO)
end

-- ---- server discovery ------------------------------------------------------------------------------------------

local function executable(p)
  return p ~= nil and p ~= '' and vim.fn.executable(p) == 1
end

--- server_path finds the opencode-lsp executable: PATH, then $GOBIN, $GOPATH/bin, ~/go/bin.
--- @return string|nil path, string[] searched
function M.server_path()
  local searched = { 'PATH' }
  local p = vim.fn.exepath('opencode-lsp')
  if p ~= '' then return p, searched end
  local dirs = {}
  if vim.env.GOBIN and vim.env.GOBIN ~= '' then table.insert(dirs, vim.env.GOBIN) end
  for _, d in ipairs(vim.split(vim.env.GOPATH or '', ':', { plain = true })) do
    if d ~= '' then table.insert(dirs, d .. '/bin') end
  end
  table.insert(dirs, (vim.env.HOME or '~') .. '/go/bin')
  for _, d in ipairs(dirs) do
    local c = d .. '/opencode-lsp'
    table.insert(searched, c)
    if executable(c) then return c, searched end
  end
  return nil, searched
end

--- The server command as a list (nil when the server is not found).
function M.cmd()
  local c = M.config.cmd
  if type(c) == 'string' then c = { c } end
  if c then return c end
  local p = M.server_path()
  return p and { p } or nil
end

--- The settings section as the server gets it.
function M.server_settings()
  local s = vim.deepcopy(M.config.settings or {})
  s.answers = 'none'
  return s
end

-- ---- clients ---------------------------------------------------------------------------------------------------

local function get_clients(filter)
  if vim.lsp.get_clients then return vim.lsp.get_clients(filter) end
  local out = {}
  for _, c in pairs(vim.lsp.get_active_clients()) do
    if (not filter.name or c.name == filter.name)
      and (not filter.bufnr or vim.lsp.buf_is_attached(filter.bufnr, c.id)) then
      table.insert(out, c)
    end
  end
  return out
end

--- The opencode client attached to bufnr (or any opencode client).
function M.client(bufnr)
  local cs = get_clients({ name = 'opencode', bufnr = bufnr })
  if #cs == 0 and bufnr then cs = get_clients({ name = 'opencode' }) end
  return cs[1]
end

local function request(client, method, params, handler, bufnr)
  if has('0.11') then return client:request(method, params, handler, bufnr) end
  return client.request(method, params, handler, bufnr)
end

local function find_root(path)
  local dir = vim.fn.fnamemodify(path, ':p:h')
  local prev
  while dir and dir ~= prev do
    for _, m in ipairs(M.config.root_markers or {}) do
      if uv.fs_stat(dir .. '/' .. m) then return dir end
    end
    prev = dir
    dir = vim.fn.fnamemodify(dir, ':h')
  end
  return vim.fn.fnamemodify(path, ':p:h')
end

-- ---- progress and the statusline -------------------------------------------------------------------------------

local running = {} -- id -> label of commands in flight
local running_seq = 0
local progress = {} -- token -> {title, message, percentage}

local function redraw()
  pcall(vim.cmd, 'redrawstatus')
end

local function on_progress(err, result, ctx, config)
  if result and result.value then
    local v, tok = result.value, tostring(result.token)
    if v.kind == 'end' then
      progress[tok] = nil
    else
      local p = progress[tok] or {}
      p.title = v.title or p.title
      p.message = v.message or p.message
      p.percentage = v.percentage or p.percentage
      progress[tok] = p
    end
    redraw()
  end
  local h = vim.lsp.handlers['$/progress']
  if h then return h(err, result, ctx, config) end
end

--- statusline returns the running work, e.g. "OpenCode: Explain main.go:5-8 (receiving (120 characters))", or
--- "" when nothing runs. Use it in 'statusline': `%{v:lua.require'opencode'.statusline()}`.
function M.statusline()
  local labels = {}
  for _, l in pairs(running) do table.insert(labels, l) end
  local msg
  for _, p in pairs(progress) do
    msg = p.message or p.title
    if msg then break end
  end
  if #labels == 0 and not msg then return '' end
  table.sort(labels)
  local s = 'OpenCode: ' .. (labels[1] or 'working')
  if #labels > 1 then s = s .. (' (+%d)'):format(#labels - 1) end
  if msg then s = s .. ' (' .. msg .. ')' end
  return s
end

-- ---- the answer window -----------------------------------------------------------------------------------------

local views = {} -- answer views in start order: {label, thread_id, buf, text, done, error}
M._views = views -- for tests and other plugins (read-only)
local float_win

local function view_lines(v)
  local lines = { '# ' .. v.label, '' }
  for _, l in ipairs(vim.split(v.text, '\n', { plain = true })) do table.insert(lines, l) end
  if v.error then
    table.insert(lines, '')
    table.insert(lines, '> ' .. v.error)
  elseif not v.done then
    lines[#lines] = lines[#lines] .. ' …'
  end
  return lines
end

-- Neovim 0.10+'s markdown ftplugin starts tree-sitter and fails loudly in a build without the markdown parser
-- (some distribution packages): there, highlight with the markdown syntax only.
local function set_markdown(buf)
  local ts = vim.treesitter
  if ts and ts.language and ts.language.add and vim.fn.has('nvim-0.10') == 1 then
    local ok, found = pcall(ts.language.add, 'markdown')
    if not ok or not found then
      vim.bo[buf].syntax = 'markdown'
      return
    end
  end
  vim.bo[buf].filetype = 'markdown'
end

local function show(v)
  if not v.buf or not vim.api.nvim_buf_is_valid(v.buf) then
    v.buf = vim.api.nvim_create_buf(false, true)
    vim.bo[v.buf].bufhidden = 'hide'
    set_markdown(v.buf)
    vim.api.nvim_buf_set_var(v.buf, 'opencode_thread', v.thread_id or '')
    vim.keymap.set('n', 'q', function()
      if float_win and vim.api.nvim_win_is_valid(float_win) then vim.api.nvim_win_close(float_win, true) end
    end, { buffer = v.buf, nowait = true, desc = 'Close the OpenCode answer' })
  end
  local lines = view_lines(v)
  vim.bo[v.buf].modifiable = true
  vim.api.nvim_buf_set_lines(v.buf, 0, -1, false, lines)
  vim.bo[v.buf].modifiable = false
  if v.thread_id then vim.api.nvim_buf_set_var(v.buf, 'opencode_thread', v.thread_id) end

  local f = M.config.float or {}
  local width = math.min(f.max_width or 100, math.max(40, vim.o.columns - 8))
  local height = 0
  for _, l in ipairs(lines) do height = height + math.max(1, math.ceil(vim.fn.strdisplaywidth(l) / width)) end
  height = math.max(3, math.min(height, f.max_height or 30, math.max(3, vim.o.lines - 6)))
  local cfg = {
    relative = 'editor', anchor = 'NE', row = 1, col = vim.o.columns - 1, width = width, height = height,
    style = 'minimal', border = f.border or 'rounded',
  }
  if has('0.9') then cfg.title = ' OpenCode ' ; cfg.title_pos = 'center' end
  if float_win and vim.api.nvim_win_is_valid(float_win) then
    vim.api.nvim_win_set_buf(float_win, v.buf)
    vim.api.nvim_win_set_config(float_win, cfg)
  else
    cfg.focusable = true
    float_win = vim.api.nvim_open_win(v.buf, false, cfg)
    vim.wo[float_win].wrap = true
    vim.wo[float_win].linebreak = true
    vim.wo[float_win].conceallevel = 2
  end
  pcall(vim.api.nvim_win_set_cursor, float_win, { #lines, 0 })
end

--- The answer window (nil when closed).
function M.float_win()
  return float_win and vim.api.nvim_win_is_valid(float_win) and float_win or nil
end

local function find_view(thread_id)
  if thread_id then
    for i = #views, 1, -1 do
      if views[i].thread_id == thread_id then return views[i] end
    end
  end
end

local function begin_view(label, thread_id)
  local v = find_view(thread_id)
  if v then
    v.text, v.done, v.error, v.label = '', false, nil, label
  else
    v = { label = label, thread_id = thread_id, text = '', done = false }
    table.insert(views, v)
  end
  vim.schedule(function() show(v) end)
  return v
end

--- The handler of opencode/chatDelta {threadId, runId, delta}: the text streams into the answer window. A
--- delta of a thread not seen yet goes to the oldest answer still waiting for its thread.
function M.on_chat_delta(_, params)
  if type(params) ~= 'table' or type(params.delta) ~= 'string' then return end
  local v = find_view(params.threadId)
  if not v then
    for _, x in ipairs(views) do
      if not x.thread_id and not x.done then v = x break end
    end
    if v then
      v.thread_id = params.threadId
    else
      v = { label = 'Answer', thread_id = params.threadId, text = '', done = false }
      table.insert(views, v)
    end
  end
  v.run_id = v.run_id or params.runId
  v.deltas = (v.deltas or 0) + 1
  v.text = v.text .. params.delta
  show(v)
end

-- ---- ranges and arguments --------------------------------------------------------------------------------------

--- range_params returns the LSP range of lines line1..line2 (1-based, inclusive) of bufnr, or of the last visual
--- selection when it covers exactly those lines, in the client's position encoding.
function M.range(bufnr, line1, line2, client)
  local enc = client and client.offset_encoding or 'utf-16'
  local s, e = vim.api.nvim_buf_get_mark(bufnr, '<'), vim.api.nvim_buf_get_mark(bufnr, '>')
  local start_pos, end_pos
  if s[1] == line1 and e[1] == line2 and vim.fn.visualmode() == 'v' then
    local last = vim.api.nvim_buf_get_lines(bufnr, e[1] - 1, e[1], false)[1] or ''
    start_pos, end_pos = { s[1], s[2] }, { e[1], math.min(e[2], math.max(#last - 1, 0)) }
  else
    local last = vim.api.nvim_buf_get_lines(bufnr, line2 - 1, line2, false)[1] or ''
    start_pos, end_pos = { line1, 0 }, { line2, math.max(#last - 1, 0) }
    if #last == 0 then end_pos = { line2, 0 } end
  end
  local p = vim.lsp.util.make_given_range_params(start_pos, end_pos, bufnr, enc)
  if #(vim.api.nvim_buf_get_lines(bufnr, end_pos[1] - 1, end_pos[1], false)[1] or '') == 0 then
    p.range['end'] = { line = end_pos[1] - 1, character = 0 }
  end
  return p.range
end

local function describe(name, a)
  a = a or {}
  local file = a.uri and vim.fn.fnamemodify(vim.uri_to_fname(a.uri), ':t') or ''
  local where = file
  if file ~= '' and a.range then
    local s, e = a.range.start.line + 1, a.range['end'].line + 1
    if a.range['end'].character == 0 and e > s then e = e - 1 end
    where = where .. (s == e and (':' .. s) or (':' .. s .. '-' .. e))
  end
  local short = function(s) return #s > 40 and (s:sub(1, 39) .. '…') or s end
  if name == M.commands.explain then return where ~= '' and ('Explain ' .. where) or 'Explain' end
  if name == M.commands.chat or name == M.commands.ask then
    if a.prompt and a.prompt ~= '' then return short(a.prompt) .. (where ~= '' and (' (' .. where .. ')') or '') end
    return where ~= '' and ('Ask about ' .. where) or 'Ask'
  end
  if name == M.commands.generate then return a.prompt and ('Generate: ' .. short(a.prompt)) or 'Generate' end
  if name == M.commands.run then return a.command and ('Run ' .. short(a.command)) or 'Run in sandbox' end
  return (name:gsub('^opencode%.', ''))
end
M.describe = describe

local function needs_prompt(name, a)
  if name ~= M.commands.chat and name ~= M.commands.generate and name ~= M.commands.ask then return false end
  return type(a) ~= 'table' or type(a.prompt) ~= 'string' or vim.trim(a.prompt) == ''
end

-- ---- commands --------------------------------------------------------------------------------------------------

M._last = {} -- the last result or error of each command (for tests and statuslines)
local cancelled_runs = {} -- runs cancelled with opencode.cancel: their commands fail with "<runId> was cancelled"
local cancel_requested = {} -- commands in flight when every run was cancelled (their answer may come first)

-- is_cancellation tells a cancelled command from a failed one: Neovim's own $/cancelRequest answers
-- RequestCancelled (-32800); a run stopped with opencode.cancel fails with "<command>: <runId> was cancelled".
local function is_cancellation(err)
  if err.code == -32800 then return true end
  local id = type(err.message) == 'string' and err.message:match(' (%S+) was cancelled$')
  return id ~= nil and cancelled_runs[id] == true
end

local function present(name, res, v)
  if name == M.commands.chat or name == M.commands.explain or (name == M.commands.ask and res.chat) then
    local r = name == M.commands.ask and res.chat or res
    if v then
      v.thread_id = r.threadId or v.thread_id
      v.text, v.done, v.model = r.text or v.text, true, r.model
      show(v)
    end
  end
  local gen = name == M.commands.generate and res or (name == M.commands.ask and res.generate)
  if v and gen and (name == M.commands.generate or not res.chat) then
    v.text, v.done = gen.message or v.text, true
    show(v)
  end
  if gen then
    M.sandbox_url = gen.sandboxUrl or M.sandbox_url
    local files = {}
    for _, f in ipairs(gen.files or {}) do table.insert(files, f.action .. ' ' .. f.path) end
    notify(('%s%s%s'):format(gen.message and (vim.split(gen.message, '\n')[1] .. ' — ') or '',
      #files > 0 and (#files .. ' file(s) ' .. (gen.applied and 'applied' or 'not applied')) or 'no file changes',
      #files > 0 and (': ' .. table.concat(files, ', ')) or ''))
  end
  if name == M.commands.run then
    M.sandbox_url = res.sandboxUrl or M.sandbox_url
    local n, files = 0, 0
    for _, c in pairs(res.diagnostics or {}) do
      n = n + c
      if c > 0 then files = files + 1 end
    end
    notify(('`%s` exited %d in %.1f s — %d problem(s) in %d file(s)%s'):format(res.command or '?', res.exitCode or -1,
      (res.durationMs or 0) / 1000, n, files, res.sandboxUrl and (', preview: ' .. res.sandboxUrl) or ''),
      res.exitCode == 0 and vim.log.levels.INFO or vim.log.levels.WARN)
  end
  if name == M.commands.cancel then
    local c = res.cancelled or {}
    for _, id in ipairs(c) do cancelled_runs[id] = true end
    notify(#c > 0 and ('cancelled ' .. table.concat(c, ', ')) or 'nothing to cancel')
  end
end

--- execute runs a server command with its one object argument, the way the palette of another editor would: a
--- missing prompt is asked for with vim.ui.input, chat answers stream into the answer window, progress shows in
--- the statusline, and the result is presented. on_done(err, result) is called at the end (optional).
function M.execute(name, args, opts)
  opts = opts or {}
  args = args or {}
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local client = opts.client_id and vim.lsp.get_client_by_id(opts.client_id) or M.client(bufnr)
  if not client then
    notify('the opencode-lsp server is not running for this buffer (see :checkhealth opencode)', vim.log.levels.ERROR)
    return
  end
  if needs_prompt(name, args) then
    vim.ui.input({ prompt = name == M.commands.generate and 'OpenCode generate: ' or 'OpenCode ask: ' }, function(input)
      if input and vim.trim(input) ~= '' then
        args.prompt = vim.trim(input)
        M.execute(name, args, opts)
      end
    end)
    return
  end
  local label = describe(name, args)
  running_seq = running_seq + 1
  local id = running_seq
  running[id] = label
  redraw()
  local v
  -- chat answers stream into the answer window; so does the agent's own account of its work (generate)
  if name == M.commands.chat or name == M.commands.explain or name == M.commands.ask or name == M.commands.generate then
    v = begin_view(label, args.threadId)
  end
  -- an empty Lua table would be encoded as [] (the server takes one JSON object)
  local arg = next(args) == nil and vim.empty_dict() or args
  request(client, 'workspace/executeCommand', { command = name, arguments = { arg } }, function(err, res)
    running[id] = nil
    redraw()
    M._last[name] = { err = err, result = res }
    local requested = cancel_requested[id]
    cancel_requested[id] = nil
    if err then
      local cancelled = requested or is_cancellation(err)
      if v then
        v.done, v.error = true, cancelled and 'Cancelled.' or ('Failed: ' .. (err.message or tostring(err)))
        show(v)
      end
      if not cancelled then notify(err.message or vim.inspect(err), vim.log.levels.ERROR) end
    elseif type(res) == 'table' then
      present(name, res, v)
    end
    if opts.on_done then opts.on_done(err, res) end
    pcall(vim.api.nvim_exec_autocmds, 'User', { pattern = 'OpenCodeDone', modeline = false })
  end, bufnr)
end

local function editor_args(o, with_range, client)
  local bufnr = vim.api.nvim_get_current_buf()
  local a = {}
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name ~= '' and vim.bo[bufnr].buftype == '' then
    a.uri = vim.uri_from_bufnr(bufnr)
    if with_range and o.range and o.range > 0 then a.range = M.range(bufnr, o.line1, o.line2, client) end
  end
  return a, bufnr
end

local function has_command(client, name)
  local cmds = client and client.server_capabilities and client.server_capabilities.executeCommandProvider
  return cmds and vim.tbl_contains(cmds.commands or {}, name) or false
end

--- :OpenCodeAsk [prompt] — with a range, about those lines. In an answer window, continues its thread.
function M.ask(o)
  o = o or {}
  local thread = vim.b.opencode_thread
  local a, bufnr = editor_args(o, true, M.client())
  a.prompt = o.args ~= '' and o.args or nil
  local client = M.client(bufnr)
  local name = M.commands.chat
  if thread and thread ~= '' then
    a.threadId = thread
  elseif has_command(client, M.commands.ask) then
    name = M.commands.ask
  end
  M.execute(name, a, { bufnr = bufnr })
end

--- :OpenCodeExplain — the range, or the whole file.
function M.explain(o)
  o = o or {}
  local a, bufnr = editor_args(o, true, M.client())
  if not a.uri then return notify('open a file first', vim.log.levels.ERROR) end
  M.execute(M.commands.explain, a, { bufnr = bufnr })
end

--- :OpenCodeGenerate [prompt] — the agent writes code in the sandbox; the edit comes back for review.
function M.generate(o)
  o = o or {}
  local a, bufnr = editor_args(o, true, M.client())
  a.prompt = o.args ~= '' and o.args or nil
  M.execute(M.commands.generate, a, { bufnr = bufnr })
end

--- :OpenCodeRun [command] — the project's check (or the command) in the sandbox; problems become diagnostics.
function M.run(o)
  o = o or {}
  local a, bufnr = editor_args(o, false)
  if o.args and o.args ~= '' then a.command = o.args end
  M.execute(M.commands.run, a, { bufnr = bufnr })
end

--- :OpenCodeCancel [runId] — cancel one run, or all.
function M.cancel(o)
  o = o or {}
  if o.args and o.args ~= '' then
    cancelled_runs[o.args] = true
    return M.execute(M.commands.cancel, { runId = o.args }, {})
  end
  for id in pairs(running) do cancel_requested[id] = true end
  M.execute(M.commands.cancel, {}, {})
end

--- :OpenCodeStatus — sandboxes, runs and sandbox time, in the answer window.
function M.status()
  M.execute(M.commands.status, {}, {
    on_done = function(err, st)
      if err or type(st) ~= 'table' then return end
      local lines = {}
      table.insert(lines, ('local sandbox isolation: %s'):format(st.isolation or '?'))
      for _, r in ipairs(st.runs or {}) do table.insert(lines, ('- run %s (%s): %s'):format(r.runId, r.kind, r.state)) end
      for _, s in ipairs(st.sandboxes or {}) do
        table.insert(lines, ('- sandbox %s %s: %s, %d s'):format(s.provider, s.id, s.state, s.seconds or 0))
      end
      for p, s in pairs(st.usage or {}) do table.insert(lines, ('- %s: %d sandbox-seconds'):format(p, s)) end
      local v = { label = 'OpenCode status', text = table.concat(lines, '\n'), done = true }
      show(v)
    end,
  })
end

--- The vim.lsp.commands handler of the server's command ids, so that code actions chosen with
--- vim.lsp.buf.code_action() go through execute() (prompt, answer window, statusline).
function M.lsp_command(command, ctx)
  local arg = command.arguments and command.arguments[1] or {}
  M.execute(command.command, vim.deepcopy(arg), { bufnr = ctx and ctx.bufnr, client_id = ctx and ctx.client_id })
end

-- ---- configuration and start -----------------------------------------------------------------------------------

--- The client capabilities: Neovim's, plus documentChanges, which every Neovim from 0.7 applies (CreateFile
--- included) but does not advertise — so that generated files arrive as one workspace edit in buffers instead of
--- being written to disk by the server.
function M.capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.workspace = caps.workspace or {}
  caps.workspace.workspaceEdit = caps.workspace.workspaceEdit or {}
  caps.workspace.workspaceEdit.documentChanges = true
  return caps
end

--- lsp_config is the client configuration (lsp/opencode.lua returns it for vim.lsp.enable on 0.11+).
function M.lsp_config()
  return {
    capabilities = M.capabilities(),
    name = 'opencode',
    cmd = M.cmd() or { 'opencode-lsp' },
    cmd_env = M.config.cmd_env,
    filetypes = M.config.filetypes,
    root_markers = M.config.root_markers,
    init_options = M.server_settings(),
    settings = { opencode = M.server_settings() },
    handlers = {
      ['opencode/chatDelta'] = M.on_chat_delta,
      ['$/progress'] = on_progress,
    },
  }
end

local function attachable(bufnr)
  if vim.bo[bufnr].buftype ~= '' or vim.api.nvim_buf_get_name(bufnr) == '' then return false end
  local fts = M.config.filetypes
  return fts == nil or vim.tbl_contains(fts, vim.bo[bufnr].filetype)
end

local warned_missing = false

--- attach starts (or reuses) the client for bufnr's project and attaches it (Neovim < 0.11).
function M.attach(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not attachable(bufnr) then return end
  local cfg = M.lsp_config()
  if not M.cmd() then
    if not warned_missing then
      warned_missing = true
      notify('opencode-lsp not found: ' .. M.install_hint, vim.log.levels.WARN)
    end
    return
  end
  cfg.root_dir = find_root(vim.api.nvim_buf_get_name(bufnr))
  cfg.root_markers, cfg.filetypes = nil, nil
  if vim.lsp.start then
    return vim.lsp.start(cfg, { bufnr = bufnr })
  end
  for _, c in ipairs(get_clients({ name = 'opencode' })) do
    if c.config.root_dir == cfg.root_dir then
      vim.lsp.buf_attach_client(bufnr, c.id)
      return c.id
    end
  end
  local id = vim.lsp.start_client(cfg)
  if id then vim.lsp.buf_attach_client(bufnr, id) end
  return id
end

--- register_lsp_commands lets code actions that carry server commands go through execute().
function M.register_lsp_commands()
  for _, name in pairs(M.commands) do
    vim.lsp.commands[name] = M.lsp_command
  end
end

--- setup configures the plugin and, with autostart (the default), starts the server for every file.
--- @param opts table|nil see :help opencode-setup
function M.setup(opts)
  M.config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  M.register_lsp_commands()
  if not M.config.autostart then return end
  if vim.lsp.config and vim.lsp.enable then
    if not M.cmd() then
      notify('opencode-lsp not found: ' .. M.install_hint, vim.log.levels.WARN)
      return
    end
    vim.lsp.config('opencode', M.lsp_config())
    vim.lsp.enable('opencode')
    return
  end
  local group = vim.api.nvim_create_augroup('opencode', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    callback = function(ev) M.attach(ev.buf) end,
  })
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.bo[b].filetype ~= '' then M.attach(b) end
  end
end

return M
