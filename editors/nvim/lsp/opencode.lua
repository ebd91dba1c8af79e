-- opencode-lsp client configuration for vim.lsp.enable('opencode') (Neovim 0.11+). Override any field with
-- vim.lsp.config('opencode', {...}), or use require('opencode').setup{} (see :help opencode).
return require('opencode').lsp_config()
