-- End-to-end driver for opencode-lsp in Neovim 0.10 and later (0.12 from Debian sid in CI), headless:
--   nvim --headless --clean -c 'luafile test/e2e/clients/nvim-modern.lua'
-- Environment and report: see nvim-core.lua and client.js. On 0.11+ the client is configured the way users do
-- it (vim.lsp.config + vim.lsp.enable, attached by the FileType autocommand); 0.10 uses vim.lsp.start. These
-- versions negotiate the position encoding themselves (they offer utf-8, utf-16, utf-32 and adopt the
-- server's positionEncoding); E2E_ENCODING narrows the offer to one encoding.
if vim.fn.has('nvim-0.10') == 0 then
  io.stderr:write('nvim-modern.lua drives Neovim 0.10 and later; this is ' .. vim.inspect(vim.version()) .. '\n')
  vim.cmd('cquit 2')
end
local has011 = vim.fn.has('nvim-0.11') == 1
-- Debian's Neovim 0.12 ships no tree-sitter parsers, while its markdown ftplugin starts tree-sitter and fails on
-- every .md buffer (such as an answer the server opens with window/showDocument); filetype detection, which
-- starts the LSP client, stays on
vim.cmd('filetype plugin off')
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'
local enabled = false

-- the languages of the fixtures; a filetype not listed here would not start the client on 0.11+
local filetypes = { 'go', 'typescript', 'javascript', 'python', 'c', 'rust', 'markdown', 'json', 'text' }

local function client_config(cfg)
  local config = {
    cmd = cfg.cmd, root_dir = cfg.root, init_options = cfg.init_options, settings = cfg.settings,
    workspace_folders = { { uri = vim.uri_from_fname(cfg.root), name = vim.fn.fnamemodify(cfg.root, ':t') } },
    flags = { debounce_text_changes = 0 },
    on_init = function(_, result) cfg.initialize_result = result end,
    on_exit = cfg.on_exit,
  }
  if cfg.encoding then
    local caps = vim.lsp.protocol.make_client_capabilities()
    caps.general.positionEncodings = { cfg.encoding }
    config.capabilities = caps
  end
  return config
end

local adapter = {
  -- 0.11+: configure and enable before the first buffer is opened, as an init.lua would; its FileType
  -- autocommand then starts the client and attaches every buffer of those filetypes.
  prepare = function(cfg)
    if has011 and not enabled then
      local config = client_config(cfg)
      config.filetypes = filetypes
      vim.lsp.config(cfg.name, config)
      vim.lsp.enable(cfg.name)
      enabled = true
    end
  end,
  attach = function(bufnr, cfg)
    if not has011 then
      local config = client_config(cfg)
      config.name = cfg.name
      vim.lsp.start(config, { bufnr = bufnr })
    end
    local client
    vim.wait(cfg.timeout, function()
      client = vim.lsp.get_clients({ bufnr = bufnr, name = cfg.name })[1]
      return (client ~= nil and client.initialized == true) or cfg.exited()
    end, 20)
    if cfg.exited() then error('the server exited during start-up: see lsp.log', 0) end
    if not (client and client.initialized) then error('the server did not start, attach or initialize: see lsp.log', 0) end
    return client
  end,
  request_sync = function(client, method, params, ms, bufnr)
    if has011 then return client:request_sync(method, params, ms, bufnr) end
    return client.request_sync(method, params, ms, bufnr)
  end,
  request = function(client, method, params, handler, bufnr)
    if has011 then return client:request(method, params, handler, bufnr) end
    return client.request(method, params, handler, bufnr)
  end,
  code_action = function(range, only)
    vim.lsp.buf.code_action({ context = { only = only }, range = range })
  end,
  unpack_item = function(item) return item.action, item.ctx.client_id end, -- {action, ctx}
  stop = function(client) if has011 then client:stop() else client.stop() end end,
  force_stop = function()
    for _, c in ipairs(vim.lsp.get_clients({ _uninitialized = true })) do if has011 then c:stop(true) else c.stop(true) end end
  end,
  set_log_level = function(level)
    if vim.lsp.log and vim.lsp.log.set_level then vim.lsp.log.set_level(level) else vim.lsp.set_log_level(level) end
  end,
  log_path = function()
    if vim.lsp.log and vim.lsp.log.get_filename then return vim.lsp.log.get_filename() end
    return vim.lsp.get_log_path()
  end,
}

-- a Lua error outside the scenario (bad environment, unreadable scenario) must not leave a headless nvim running
local ok, err = pcall(function() dofile(here .. 'nvim-core.lua')(adapter) end)
if not ok then
  io.stderr:write('e2e driver error: ' .. tostring(err) .. '\n')
  vim.cmd('cquit 2')
end
