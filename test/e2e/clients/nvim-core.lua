-- Scenario engine shared by the Neovim drivers (nvim07.lua for Neovim 0.7, nvim-modern.lua for 0.10+).
-- Everything goes through Neovim's own LSP client: buffers, position conversion (client.offset_encoding),
-- vim.lsp.buf.code_action with vim.ui.select answered by the script, the built-in handlers for
-- workspace/applyEdit, progress and diagnostics. The per-version entry script passes an adapter with the few
-- calls whose API changed between versions (starting the client, request_sync, code_action, ui.select items).
--
-- Environment: see client.js (E2E_SERVER, E2E_SERVER_ARGS, E2E_WORKSPACE, E2E_SCENARIO, E2E_REPORT, E2E_LOG,
-- E2E_ENCODING, E2E_TIMEOUT_MS). The report has the same shape for every driver.
return function(A)
  local api = vim.api
  local getenv = os.getenv
  local t0 = (vim.uv or vim.loop).hrtime()
  local timeout = tonumber(getenv('E2E_TIMEOUT_MS') or '') or 20000
  local root = vim.fn.fnamemodify(getenv('E2E_WORKSPACE') or '', ':p'):gsub('/$', '')
  local report_path = getenv('E2E_REPORT')
  local encoding = getenv('E2E_ENCODING')
  if encoding == '' then encoding = nil end
  local dict = vim.empty_dict

  local report = {
    client = { name = 'neovim', version = ('%d.%d.%d'):format(vim.version().major, vim.version().minor, vim.version().patch), mode = 'editor' },
    encoding = vim.NIL, initializeResult = vim.NIL, results = dict(), diagnostics = dict(),
    publishedDiagnostics = dict(), serverRequests = dict(), serverNotifications = dict(), progress = {},
    notifications = dict(), showMessages = {}, showMessageRequests = {}, showDocuments = {}, applyEdits = {},
    documents = dict(), editorMessages = {}, stepsDone = 0, error = vim.NIL,
  }
  local function bump(t, k) t[k] = (t[k] or 0) + 1 end

  local scenario = vim.json.decode(table.concat(vim.fn.readfile(getenv('E2E_SCENARIO')), '\n'))
  local function opt(v) if v == vim.NIL then return nil end return v end

  local function rel(uri)
    local ok, fname = pcall(vim.uri_to_fname, uri)
    if ok and fname:sub(1, #root + 1) == root .. '/' then return fname:sub(#root + 2) end
    return uri
  end
  local function path_of(file) return root .. '/' .. file end
  local function uri_of(file) return vim.uri_from_fname(path_of(file)) end
  local function expand(v)
    if type(v) == 'string' then
      v = v:gsub('%${uri:([^}]+)}', function(f) return uri_of(f) end)
      v = v:gsub('%${rootUri}', function() return vim.uri_from_fname(root) end)
      return (v:gsub('%${root}', function() return root end))
    elseif type(v) == 'table' then
      local out = getmetatable(v) and dict() or {}
      for k, x in pairs(v) do out[k] = expand(x) end
      return out
    end
    return v
  end

  -- Everything the server sends is counted at the RPC layer, under Neovim's own dispatchers.
  local last_code_action_params
  local orig_rpc_start = vim.lsp.rpc.start
  vim.lsp.rpc.start = function(...)
    local args = { ... }
    local n = select('#', ...)
    for i = 1, n do
      local d = args[i]
      if type(d) == 'table' and d.notification and d.server_request then
        local notif, req = d.notification, d.server_request
        local wrapped = {}
        for k, v in pairs(d) do wrapped[k] = v end
        wrapped.notification = function(method, params)
          bump(report.serverNotifications, method)
          if method == '$/progress' then
            local v = params.value or {}
            table.insert(report.progress, { token = params.token, kind = v.kind, title = v.title, message = v.message,
              percentage = v.percentage, cancellable = v.cancellable })
          elseif method == 'textDocument/publishDiagnostics' then
            report.publishedDiagnostics[rel(params.uri)] = params.diagnostics
          elseif method == 'window/showMessage' then
            table.insert(report.showMessages, { type = params.type, message = params.message })
          elseif method ~= 'window/logMessage' then
            report.notifications[method] = report.notifications[method] or {}
            table.insert(report.notifications[method], params)
          end
          return notif(method, params)
        end
        wrapped.server_request = function(method, params)
          bump(report.serverRequests, method)
          return req(method, params)
        end
        args[i] = wrapped
      end
    end
    local rpc = orig_rpc_start(unpack(args, 1, n))
    local orig_request = rpc.request
    rpc.request = function(method, params, ...)
      if method == 'textDocument/codeAction' then last_code_action_params = params end
      return orig_request(method, params, ...)
    end
    return rpc
  end

  -- Editor behaviour the scenario scripts.
  local choose_rules = (scenario.responses and opt(scenario.responses.showMessageRequest)) or {}
  vim.lsp.handlers['window/showMessageRequest'] = function(_, params)
    local titles = {}
    for _, a in ipairs(params.actions or {}) do table.insert(titles, a.title) end
    local chosen
    for _, r in ipairs(choose_rules) do
      if not opt(r.match) or params.message:find(r.match, 1, true) then
        for _, a in ipairs(params.actions or {}) do if a.title == r.choose then chosen = a end end
        break
      end
    end
    table.insert(report.showMessageRequests, { type = params.type, message = params.message, actions = titles,
      chosen = chosen and chosen.title or vim.NIL })
    return chosen or vim.NIL
  end
  local orig_show_document = vim.lsp.handlers['window/showDocument']
  if orig_show_document then
    vim.lsp.handlers['window/showDocument'] = function(err, params, ctx, config)
      table.insert(report.showDocuments, { uri = params.uri, external = params.external or false,
        takeFocus = params.takeFocus or false, selection = params.selection or vim.NIL })
      if params.external then return { success = true } end -- the default would start a browser (vim.ui.open)
      return orig_show_document(err, params, ctx, config)
    end
  end
  local orig_apply_edit = vim.lsp.handlers['workspace/applyEdit']
  vim.lsp.handlers['workspace/applyEdit'] = function(err, params, ctx, config)
    local res = orig_apply_edit(err, params, ctx, config)
    table.insert(report.applyEdits, { label = params.label or vim.NIL, applied = res and res.applied or false,
      failureReason = res and res.failureReason or vim.NIL, edit = params.edit })
    return res
  end
  local command_responses = {} -- answers to executeCommand requests sent by Neovim itself (code action path)
  local orig_exec_handler = vim.lsp.handlers['workspace/executeCommand']
  vim.lsp.handlers['workspace/executeCommand'] = function(err, result, ctx, config)
    table.insert(command_responses, { err = err, result = result })
    if orig_exec_handler then return orig_exec_handler(err, result, ctx, config) end
  end
  local orig_notify = vim.notify
  local refusals = {} -- Neovim's own warnings and errors (not the server's "LSP[...]" messages)
  vim.notify = function(msg, level, o)
    table.insert(report.editorMessages, tostring(msg))
    if level and level >= vim.log.levels.WARN and not tostring(msg):find('^LSP%[') then
      table.insert(refusals, tostring(msg))
    end
    if level and level >= vim.log.levels.WARN then return orig_notify(msg, level, o) end
  end

  local function wait(what, ms, pred)
    if not vim.wait(ms or timeout, pred, 20) then error('timed out after ' .. (ms or timeout) .. ' ms waiting for ' .. what, 0) end
  end

  -- Buffers and positions.
  local client
  local function buf_of(file)
    local b = vim.fn.bufnr(path_of(file))
    if b < 0 then error(file .. ' is not open', 0) end
    return b
  end
  local function resolve(buf, ref) -- -> 1-based row, 0-based byte column (what nvim_win_set_cursor takes)
    if type(ref) ~= 'table' or type(ref.find) ~= 'string' then error('position reference needs "find"', 0) end
    local want, seen = opt(ref.occurrence) or 1, 0
    for row, line in ipairs(api.nvim_buf_get_lines(buf, 0, -1, false)) do
      local from = 1
      while true do
        local s, e = line:find(ref.find, from, true)
        if not s then break end
        seen = seen + 1
        if seen == want then
          if ref.edge == 'start' then return row, s - 1 end
          return row, e
        end
        from = s + 1
      end
    end
    error('text ' .. ref.find .. ' not found', 0)
  end

  local function diagnostics_as_seen(file)
    local buf = vim.fn.bufadd(path_of(file))
    vim.fn.bufload(buf)
    local out = {}
    for _, d in ipairs(vim.diagnostic.get(buf)) do
      local line = api.nvim_buf_get_lines(buf, d.lnum, d.lnum + 1, false)[1] or ''
      local text = line:sub(d.col + 1, (d.end_lnum == d.lnum) and d.end_col or #line)
      local lsp = d.user_data and d.user_data.lsp or {}
      table.insert(out, { line = d.lnum, endLine = d.end_lnum or d.lnum, prefix = line:sub(1, d.col), text = text,
        message = d.message, severity = d.severity, source = d.source or lsp.source or vim.NIL,
        code = d.code or lsp.code or vim.NIL })
    end
    return out
  end

  local function action_record(a)
    if type(a.command) == 'string' then
      return { title = a.title, kind = vim.NIL, isCommand = true,
        command = { title = a.title, command = a.command, arguments = a.arguments or {} } }
    end
    return { title = a.title, kind = a.kind or vim.NIL, isCommand = false, diagnostics = #(a.diagnostics or {}),
      command = a.command or vim.NIL, hasEdit = a.edit ~= nil }
  end

  local function execute(res, command, args, ms)
    res.command = command
    local r, err = A.request_sync(client, 'workspace/executeCommand', { command = command, arguments = args }, ms or timeout,
      api.nvim_get_current_buf())
    if not r then error('workspace/executeCommand ' .. command .. ': ' .. tostring(err), 0) end
    if r.err then
      res.error = { code = r.err.code, message = r.err.message, data = r.err.data or vim.NIL }
    else
      res.result = r.result == nil and vim.NIL or r.result
    end
  end

  local cfg = {
    name = 'opencode', root = root, encoding = encoding,
    cmd = vim.list_extend({ getenv('E2E_SERVER') }, vim.json.decode(getenv('E2E_SERVER_ARGS') or '[]')),
    init_options = opt(scenario.initializationOptions), settings = opt(scenario.configuration) or dict(),
    on_exit = function(code, signal) report.serverExit = { code = code, signal = signal } end,
    timeout = timeout,
  }
  cfg.exited = function() return report.serverExit ~= nil end

  local steps = {}
  function steps.open(s)
    if A.prepare then A.prepare(cfg) end
    vim.cmd('edit ' .. vim.fn.fnameescape(path_of(s.file)))
    client = A.attach(api.nvim_get_current_buf(), cfg)
    report.initializeResult = cfg.initialize_result or vim.NIL
    report.encoding = client.offset_encoding
  end
  function steps.close(s)
    vim.cmd('bwipeout! ' .. buf_of(s.file))
  end
  function steps.insert(s)
    local buf = buf_of(s.file)
    local row, col = resolve(buf, s.at)
    api.nvim_buf_set_text(buf, row - 1, col, row - 1, col, vim.split(s.text, '\n', { plain = true }))
  end
  function steps.save(s)
    vim.api.nvim_buf_call(buf_of(s.file), function() vim.cmd('silent write') end)
  end
  function steps.codeAction(s)
    local buf = buf_of(s.file)
    vim.cmd('buffer ' .. buf)
    local row, col = resolve(buf, s.at)
    api.nvim_win_set_cursor(0, { row, col })
    local range
    if opt(s.to) then
      local r2, c2 = resolve(buf, s.to)
      range = { start = { row, col }, ['end'] = { r2, c2 } }
    end
    local offered, no_actions
    local orig_select = vim.ui.select
    vim.ui.select = function(items, _, on_choice) offered = { items = items, on_choice = on_choice } end
    local n_msgs = #report.editorMessages
    last_code_action_params = nil
    A.code_action(range, opt(s.only))
    wait('code actions', opt(s.timeoutMs), function()
      for i = n_msgs + 1, #report.editorMessages do
        if report.editorMessages[i]:find('No code actions', 1, true) then no_actions = true end
      end
      return offered ~= nil or no_actions
    end)
    vim.ui.select = orig_select
    local res = { actions = {}, range = last_code_action_params and last_code_action_params.range or vim.NIL }
    report.results[s.id] = res
    local chosen
    for _, item in ipairs(offered and offered.items or {}) do
      local a = A.unpack_item(item)
      table.insert(res.actions, action_record(a))
      if opt(s.choose) and a.title == s.choose then chosen = item end
    end
    if opt(s.choose) then
      if not chosen then error('no code action titled ' .. s.choose, 0) end
      local a = A.unpack_item(chosen)
      res.command = type(a.command) == 'string' and a.command or (a.command and a.command.command) or vim.NIL
      local before, n_refusals = #command_responses, #refusals
      offered.on_choice(chosen) -- Neovim runs the action its own way (workspace/executeCommand, or a refusal)
      wait('the chosen code action to run', opt(s.timeoutMs), function()
        return #command_responses > before or #refusals > n_refusals
      end)
      local r = command_responses[before + 1]
      if r and r.err then
        res.error = { code = r.err.code, message = r.err.message, data = r.err.data or vim.NIL }
      elseif r then
        res.result = r.result == nil and vim.NIL or r.result
      else
        res.error = { code = vim.NIL, message = 'neovim: ' .. refusals[n_refusals + 1] }
      end
    end
  end
  local pending = {} -- id -> true while an asynchronous executeCommand awaits its answer
  function steps.executeCommand(s)
    local res = dict()
    report.results[s.id] = res
    if not opt(s.async) then
      return execute(res, s.command, expand(opt(s.arguments) or {}), opt(s.timeoutMs))
    end
    res.command = s.command
    pending[s.id] = true
    local ok = A.request(client, 'workspace/executeCommand', { command = s.command, arguments = expand(opt(s.arguments) or {}) },
      function(err, result)
        if err then
          res.error = { code = err.code, message = err.message, data = err.data or vim.NIL }
        else
          res.result = result == nil and vim.NIL or result
        end
        pending[s.id] = nil
      end, api.nvim_get_current_buf())
    if not ok then error('workspace/executeCommand ' .. s.command .. ': the request was not sent', 0) end
  end
  function steps.await(s)
    if not report.results[s.id] then error('no asynchronous command ' .. tostring(s.id), 0) end
    wait('the answer to ' .. s.id, opt(s.timeoutMs), function() return not pending[s.id] end)
  end
  function steps.waitDiagnostics(s)
    local f = s.file
    local function matching()
      local n = 0
      for _, d in ipairs(report.publishedDiagnostics[f] or {}) do
        if not opt(s.source) or d.source == s.source then n = n + 1 end
      end
      return n
    end
    local min, max = opt(s.min) or 1, opt(s.max)
    wait(min .. ' diagnostic(s) on ' .. f, opt(s.timeoutMs), function()
      if report.publishedDiagnostics[f] == nil then return false end
      if max then return matching() <= max end
      return matching() >= min
    end)
    -- the client applies a publish on the main loop: wait until its own store caught up
    wait('Neovim to store the diagnostics of ' .. f, opt(s.timeoutMs), function()
      return #diagnostics_as_seen(f) == #report.publishedDiagnostics[f]
    end)
    if opt(s.id) then report.results[s.id] = { diagnostics = diagnostics_as_seen(f) } end
  end
  function steps.waitNotification(s)
    wait((opt(s.min) or 1) .. ' ' .. s.method, opt(s.timeoutMs), function()
      return (report.serverNotifications[s.method] or 0) >= (opt(s.min) or 1)
    end)
  end
  function steps.waitProgress(s)
    wait('the end of progress ' .. (opt(s.title) or ''), opt(s.timeoutMs), function()
      local tokens = {}
      for _, p in ipairs(report.progress) do
        if p.kind == 'begin' and (not opt(s.title) or p.title == s.title) then tokens[p.token] = true end
      end
      for _, p in ipairs(report.progress) do
        if p.kind == 'end' and tokens[p.token] then return true end
      end
      return false
    end)
  end

  local function finish(code)
    for _, b in ipairs(api.nvim_list_bufs()) do
      local name = api.nvim_buf_get_name(b)
      if api.nvim_buf_is_loaded(b) and name:sub(1, #root + 1) == root .. '/' then
        local lines = api.nvim_buf_get_lines(b, 0, -1, false)
        report.documents[name:sub(#root + 2)] = table.concat(lines, '\n') .. (vim.bo[b].eol and '\n' or '')
      end
    end
    report.elapsedMs = math.floor(((vim.uv or vim.loop).hrtime() - t0) / 1e6)
    vim.fn.writefile({ vim.json.encode(report) }, report_path)
    local log = getenv('E2E_LOG')
    if log and log ~= '' and vim.fn.filereadable(A.log_path()) == 1 then
      vim.fn.writefile(vim.fn.readfile(A.log_path()), log)
    end
    if code ~= 0 then
      -- a server that did not answer must not outlive the editor (0.10+ starts servers in their own session)
      A.force_stop()
      vim.wait(2000, function() return report.serverExit ~= nil end, 20)
    end
    if code == 0 then vim.cmd('qall!') else vim.cmd('cquit ' .. code) end
  end

  A.set_log_level('debug')
  vim.o.selection = 'exclusive' -- a code action range ends where the scenario says, not one character later
  local ok, err = xpcall(function()
    for i, s in ipairs(scenario.steps) do
      local fn = steps[s.op]
      if not fn then error('unknown step op ' .. tostring(s.op), 0) end
      local sok, serr = pcall(fn, s)
      if not sok then
        error(('step %d (%s%s): %s'):format(i, s.op, opt(s.id) and (' ' .. s.id) or '', tostring(serr)), 0)
      end
      report.stepsDone = i
    end
    for f in pairs(report.publishedDiagnostics) do report.diagnostics[f] = diagnostics_as_seen(f) end
    for _, b in ipairs(api.nvim_list_bufs()) do
      local name = api.nvim_buf_get_name(b)
      if api.nvim_buf_is_loaded(b) and name:sub(1, #root + 1) == root .. '/' and not report.diagnostics[name:sub(#root + 2)] then
        report.diagnostics[name:sub(#root + 2)] = diagnostics_as_seen(name:sub(#root + 2))
      end
    end
    if client then
      A.stop(client)
      wait('the server to exit after shutdown + exit', timeout, function() return report.serverExit ~= nil end)
    end
  end, debug.traceback)
  if not ok then
    report.error = tostring(err)
    finish(1)
  else
    finish(0)
  end
end
