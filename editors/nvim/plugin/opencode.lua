-- opencode.nvim user commands (the module loads on first use). See :help opencode.
if vim.g.loaded_opencode then return end
vim.g.loaded_opencode = true

local function cmd(name, fn, opts)
  vim.api.nvim_create_user_command(name, function(o) require('opencode')[fn](o) end, opts)
end
cmd('OpenCodeAsk', 'ask', { nargs = '*', range = true, desc = 'OpenCode: ask about the code (range: those lines)' })
cmd('OpenCodeExplain', 'explain', { range = true, desc = 'OpenCode: explain the range, or the file' })
cmd('OpenCodeGenerate', 'generate', { nargs = '*', range = true, desc = 'OpenCode: let the agent write code in the sandbox' })
cmd('OpenCodeRun', 'run', { nargs = '*', desc = "OpenCode: run the project's check (or a command) in the sandbox" })
cmd('OpenCodeCancel', 'cancel', { nargs = '?', desc = 'OpenCode: cancel a run (or all)' })
cmd('OpenCodeStatus', 'status', { nargs = 0, desc = 'OpenCode: sandboxes, runs and sandbox time' })

-- Code actions carry the server's command ids; these handlers give them the plugin's prompt and answer window
-- (without the plugin, Neovim sends them to the server as they are).
for _, name in ipairs({ 'opencode.chat', 'opencode.explain', 'opencode.generate', 'opencode.run', 'opencode.ask',
  'opencode.cancel', 'opencode.status' }) do
  vim.lsp.commands[name] = function(command, ctx) require('opencode').lsp_command(command, ctx) end
end
