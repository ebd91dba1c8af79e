-- :checkhealth opencode — the server binary and its version, the API keys (present or not, never their value),
-- bubblewrap for the local sandbox, the OpenCode agent binary, and whether the running server answers and how its
-- sandbox isolates commands.
local M = {}

local h = vim.health or require('health')
local start = h.start or h.report_start
local ok = h.ok or h.report_ok
local warn = h.warn or h.report_warn
local err = h.error or h.report_error
local info = h.info or h.report_info

local function first_line(cmd)
  local out = vim.fn.system(cmd)
  if vim.v.shell_error ~= 0 then return nil, vim.trim(out) end
  return vim.trim(vim.split(out, '\n', { plain = true })[1] or '')
end

local function status_of(client, bufnr)
  local params = { command = 'opencode.status', arguments = { vim.empty_dict() } }
  local res
  if vim.fn.has('nvim-0.11') == 1 then
    res = client:request_sync('workspace/executeCommand', params, 5000, bufnr)
  else
    res = client.request_sync('workspace/executeCommand', params, 5000, bufnr)
  end
  if not res then return nil, 'no answer within 5 s' end
  if res.err then return nil, res.err.message or vim.inspect(res.err) end
  return res.result
end

function M.check()
  local oc = require('opencode')
  local settings = oc.config.settings or {}

  start('opencode: Neovim')
  if vim.fn.has('nvim-0.7.2') == 1 then
    local v = vim.version()
    ok(('Neovim %d.%d.%d%s'):format(v.major, v.minor, v.patch,
      vim.fn.has('nvim-0.11') == 1 and ' (vim.lsp.enable with lsp/opencode.lua)' or
      (vim.lsp.start and ' (vim.lsp.start)' or ' (vim.lsp.start_client)')))
  else
    err('Neovim 0.7.2 or newer is required')
  end

  start('opencode: server')
  local cmd = oc.cmd()
  if not cmd then
    local _, searched = oc.server_path()
    err('opencode-lsp not found (searched ' .. table.concat(searched, ', ') .. ')', { oc.install_hint })
  elseif vim.fn.executable(cmd[1]) ~= 1 then
    err(cmd[1] .. ' is not executable', { oc.install_hint })
  else
    local version, why = first_line({ cmd[1], '--version' })
    if version then ok(('%s: %s'):format(cmd[1], version)) else err(('%s --version failed: %s'):format(cmd[1], why or '')) end
  end
  local clients = {}
  for _, c in ipairs((vim.lsp.get_clients or vim.lsp.get_active_clients)({ name = 'opencode' })) do
    table.insert(clients, c)
  end
  if #clients == 0 then
    info('no opencode client is running (open a file; setup{} or vim.lsp.enable("opencode") starts it)')
  end

  start('opencode: API keys')
  local keys = {
    { 'OPENROUTER_API_KEY', settings.openrouter and settings.openrouter.apiKey, 'chat, explain, and the agent\'s model' },
    { 'E2B_API_KEY', settings.e2b and settings.e2b.apiKey, 'the e2b sandbox' },
    { 'DAYTONA_API_KEY', settings.daytona and settings.daytona.apiKey, 'the daytona sandbox' },
  }
  local sandbox = settings.sandbox or 'local'
  for _, k in ipairs(keys) do
    local env = vim.env[k[1]]
    if (env and env ~= '') or (k[2] and k[2] ~= '') then
      ok(('%s is set%s'):format(k[1], (env and env ~= '') and ' (environment)' or ' (settings)'))
    elseif k[1] == 'OPENROUTER_API_KEY' or (k[1] == 'E2B_API_KEY' and sandbox == 'e2b') or (k[1] == 'DAYTONA_API_KEY' and sandbox == 'daytona') then
      warn(('%s is not set: needed for %s'):format(k[1], k[3]), { 'export ' .. k[1] .. '=… in the shell that starts Neovim' })
    else
      info(('%s is not set (only needed for %s)'):format(k[1], k[3]))
    end
  end

  start('opencode: sandbox')
  info('default sandbox: ' .. sandbox)
  if vim.fn.executable('bwrap') == 1 then
    local v = first_line({ 'bwrap', '--version' }) or '?'
    local works, why = first_line({ 'bwrap', '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', 'true' })
    if works then
      ok(v .. ': the local sandbox isolates commands')
    else
      warn(v .. ' is installed but cannot create a sandbox here: ' .. (why or ''), { 'user namespaces may be disabled' })
    end
  else
    warn('bubblewrap (bwrap) is not installed: local sandbox commands run without isolation', { 'apt-get install bubblewrap' })
  end
  local opencode = settings.generate and settings.generate.opencodePath
  if not opencode or opencode == '' then opencode = vim.fn.exepath('opencode') end
  if opencode ~= '' and vim.fn.executable(opencode) == 1 then
    local v = first_line({ opencode, '--version' })
    ok(('OpenCode agent: %s %s'):format(opencode, v or '(version unknown)'))
  else
    warn('the OpenCode agent (`opencode`) was not found: Generate needs it', { 'npm install -g opencode-ai', 'or set settings.generate.opencodePath' })
  end
  for _, c in ipairs(clients) do
    local st, why = status_of(c)
    if st then
      ok(('server (client %d, root %s) answers; local sandbox isolation: %s'):format(c.id, c.config.root_dir or '?', st.isolation or '?'))
      for _, s in ipairs(st.sandboxes or {}) do
        info(('sandbox %s %s: %s (%d s)'):format(s.provider, s.id, s.state, s.seconds or 0))
      end
    else
      err(('server (client %d) does not answer opencode.status: %s'):format(c.id, why or '?'))
    end
  end
  if sandbox == 'e2b' or sandbox == 'daytona' then
    info(sandbox .. ' is reached by the server on first use; its errors are shown then')
  end
end

return M
