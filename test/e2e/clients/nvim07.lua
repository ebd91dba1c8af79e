-- End-to-end driver for opencode-lsp in Neovim 0.7 (Debian bookworm's 0.7.2), headless:
--   nvim --headless --clean -c 'luafile test/e2e/clients/nvim07.lua'
-- Environment and report: see nvim-core.lua and client.js. The LSP client of 0.7 is vim.lsp.start_client +
-- buf_attach_client. It does not negotiate position encodings: like a user would, the script offers
-- E2E_ENCODING (when set) in general.positionEncodings and adopts the server's answer in on_init, which is
-- the documented place to set client.offset_encoding.
if vim.fn.has('nvim-0.7') == 0 or vim.fn.has('nvim-0.8') == 1 then
  io.stderr:write('nvim07.lua drives Neovim 0.7; this is ' .. vim.inspect(vim.version()) .. '\n')
  vim.cmd('cquit 2')
end
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'
local client_id

local adapter = {
  attach = function(bufnr, cfg)
    if not client_id then
      local capabilities = vim.lsp.protocol.make_client_capabilities()
      if cfg.encoding then capabilities.general = { positionEncodings = { cfg.encoding } } end
      client_id = vim.lsp.start_client({
        name = cfg.name, cmd = cfg.cmd, root_dir = cfg.root,
        workspace_folders = { { uri = vim.uri_from_fname(cfg.root), name = vim.fn.fnamemodify(cfg.root, ':t') } },
        init_options = cfg.init_options, settings = cfg.settings, capabilities = capabilities,
        flags = { debounce_text_changes = 0 },
        on_init = function(client, result)
          cfg.initialize_result = result
          client.offset_encoding = result.capabilities.positionEncoding or 'utf-16'
        end,
        on_exit = cfg.on_exit,
      })
      if not client_id then error('vim.lsp.start_client failed', 0) end
    end
    vim.lsp.buf_attach_client(bufnr, client_id)
    local c
    vim.wait(cfg.timeout, function()
      c = vim.lsp.get_client_by_id(client_id)
      return (c ~= nil and c.initialized == true) or cfg.exited()
    end, 20)
    if cfg.exited() then error('the server exited during start-up: see lsp.log', 0) end
    if not (c and c.initialized) then error('the server did not initialize: see lsp.log', 0) end
    return vim.lsp.get_client_by_id(client_id)
  end,
  request_sync = function(client, method, params, ms, bufnr)
    return client.request_sync(method, params, ms, bufnr)
  end,
  request = function(client, method, params, handler, bufnr) return client.request(method, params, handler, bufnr) end,
  code_action = function(range, only)
    local context = { only = only }
    if range then
      vim.lsp.buf.range_code_action(context, range.start, range['end'])
    else
      vim.lsp.buf.code_action(context)
    end
  end,
  unpack_item = function(item) return item[2], item[1] end, -- {client_id, action}
  stop = function(client) client.stop() end,
  force_stop = function() vim.lsp.stop_client(vim.lsp.get_active_clients(), true) end,
  set_log_level = function(level) vim.lsp.set_log_level(level) end,
  log_path = function() return vim.lsp.get_log_path() end,
}

-- a Lua error outside the scenario (bad environment, unreadable scenario) must not leave a headless nvim running
local ok, err = pcall(function() dofile(here .. 'nvim-core.lua')(adapter) end)
if not ok then
  io.stderr:write('e2e driver error: ' .. tostring(err) .. '\n')
  vim.cmd('cquit 2')
end
