package outputdiag

import (
	"path"
	"strings"
)

// Tool returns the name of the tool that reports diagnostics for a command
// line: the program of its first simple command, as a base name, with
// wrappers skipped. This is the `code` of every diagnostic (editor
// contract). Examples:
//
//	"go vet ./..."                   → "go"
//	"npx tsc --noEmit"               → "tsc"
//	"npx -p typescript tsc"          → "tsc"
//	"npm exec -- eslint ."           → "eslint"
//	"env FOO=1 go vet ./..."         → "go"
//	"CGO_ENABLED=0 go build"         → "go"
//	"cd sub && cargo check"          → "cargo"
//	"sh -c 'gcc -c x.c'"             → "gcc"
//	"timeout 60 make"                → "make"
//	"node_modules/.bin/tsc --noEmit" → "tsc"
//	"python3 -m pytest"              → "python3" (the program, not the module)
//	"npm test"                       → "npm" (Parse refines this to the
//	                                    script's tool when package.json is available)
//
// Skipped wrappers: env (with its options and NAME=value words), shell
// variable assignments, npx/pnpx/bunx (with -y, --yes, --no, -q, -p PKG,
// --package PKG), `npm|pnpm|yarn|bun exec|x|dlx` (with the same options and
// "--"), `sh|bash|dash|zsh -c SCRIPT` (the script is analysed), `cd DIR &&`,
// time, nohup, nice [-n N], timeout [options] DURATION, stdbuf, command,
// exec, and `uv|poetry|pipenv|pdm|hatch|rye run`, `bundle exec`.
// An empty command gives "".
func Tool(command string) string {
	return analyzeCommand(command).tool()
}

// command is what Parse learns from a command line.
type command struct {
	// argv is the first simple command with wrappers removed; argv[0] is
	// the program as written.
	argv []string
	// dir is the directory a leading `cd DIR &&` moves to (relative to the
	// command's directory), or "".
	dir string
	// rest holds the other simple commands of the line (after &&, ||, ;
	// or |), analysed the same way.
	rest []command
}

// tool is the base name of the program, or "".
func (c command) tool() string {
	if len(c.argv) == 0 {
		return ""
	}
	return path.Base(c.argv[0])
}

// args are the program's arguments.
func (c command) args() []string {
	if len(c.argv) == 0 {
		return nil
	}
	return c.argv[1:]
}

// analyzeCommand splits a shell command line and analyses its simple
// commands.
func analyzeCommand(line string) command {
	return analyzeWords(shellWords(line), 0)
}

// analyzeArgv analyses a command given as argv (no shell involved).
func analyzeArgv(argv []string) command {
	return analyzeSimple(append([]string(nil), argv...), 0)
}

func analyzeWords(words []string, depth int) command {
	var cmds []command
	var dir string
	start := 0
	for i := 0; i <= len(words); i++ {
		if i < len(words) && !isOperator(words[i]) {
			continue
		}
		simple := words[start:i]
		start = i + 1
		if len(simple) == 0 {
			continue
		}
		if len(cmds) == 0 && path.Base(simple[0]) == "cd" && len(simple) == 2 && !strings.HasPrefix(simple[1], "-") {
			dir = path.Join(dir, simple[1])
			continue
		}
		cmds = append(cmds, analyzeSimple(simple, depth))
	}
	if len(cmds) == 0 {
		return command{dir: dir}
	}
	c := cmds[0]
	c.dir = path.Join(dir, c.dir)
	if c.dir == "." {
		c.dir = ""
	}
	c.rest = cmds[1:]
	return c
}

func isOperator(w string) bool {
	switch w {
	case "&&", "||", ";", "|", "&", "\n", "|&":
		return true
	}
	return false
}

// analyzeSimple removes wrappers from one simple command.
func analyzeSimple(argv []string, depth int) command {
	for len(argv) > 0 {
		// Shell variable assignments before the program.
		for len(argv) > 0 && isAssignment(argv[0]) {
			argv = argv[1:]
		}
		if len(argv) == 0 {
			break
		}
		switch path.Base(argv[0]) {
		case "env":
			argv = skipOptions(argv[1:], map[string]bool{"-u": true, "--unset": true, "-C": true, "--chdir": true, "-S": false})
			for len(argv) > 0 && isAssignment(argv[0]) {
				argv = argv[1:]
			}
			continue
		case "npx", "pnpx", "bunx":
			argv = skipNpxOptions(argv[1:])
			continue
		case "npm", "pnpm", "yarn", "bun":
			if len(argv) > 1 && (argv[1] == "exec" || argv[1] == "x" || argv[1] == "dlx") {
				argv = skipNpxOptions(argv[2:])
				continue
			}
		case "time", "nohup", "command", "exec", "builtin":
			argv = skipOptions(argv[1:], nil)
			continue
		case "nice":
			argv = skipOptions(argv[1:], map[string]bool{"-n": true, "--adjustment": true})
			continue
		case "stdbuf":
			argv = skipOptions(argv[1:], map[string]bool{"-i": true, "-o": true, "-e": true})
			continue
		case "timeout":
			argv = skipOptions(argv[1:], map[string]bool{"-s": true, "--signal": true, "-k": true, "--kill-after": true})
			if len(argv) > 0 {
				argv = argv[1:] // the duration
			}
			continue
		case "uv", "poetry", "pipenv", "pdm", "hatch", "rye":
			if len(argv) > 1 && argv[1] == "run" {
				argv = skipOptions(argv[2:], nil)
				continue
			}
		case "bundle":
			if len(argv) > 1 && argv[1] == "exec" {
				argv = argv[2:]
				continue
			}
		case "sh", "bash", "dash", "zsh":
			for i := 1; i+1 < len(argv); i++ {
				if isShellC(argv[i]) && depth < 4 {
					return analyzeWords(shellWords(argv[i+1]), depth+1)
				}
				if !strings.HasPrefix(argv[i], "-") {
					break
				}
			}
		}
		break
	}
	return command{argv: argv}
}

// isShellC recognizes a shell's -c option, alone or among others (-lc, -ec).
func isShellC(a string) bool {
	return len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.IndexByte(a, 'c') > 0
}

func isAssignment(w string) bool {
	eq := strings.IndexByte(w, '=')
	if eq <= 0 {
		return false
	}
	for i, r := range w[:eq] {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// skipOptions drops leading options ("-x", "--long", "--long=value"); the
// options in withValue take the next word as their value when written
// without "=". A "--" ends the options and is dropped.
func skipOptions(argv []string, withValue map[string]bool) []string {
	for len(argv) > 0 {
		a := argv[0]
		if a == "--" {
			return argv[1:]
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return argv
		}
		argv = argv[1:]
		if withValue[a] && len(argv) > 0 {
			argv = argv[1:]
		}
	}
	return argv
}

func skipNpxOptions(argv []string) []string {
	return skipOptions(argv, map[string]bool{"-p": true, "--package": true, "-w": true, "--workspace": true, "--call": true, "-c": true})
}

// shellWords splits a command line like a POSIX shell would for our
// purposes: blanks separate words, single quotes are literal, double quotes
// allow \" \\ \$ \` escapes, a backslash escapes the next character
// elsewhere, and the operators && || ; | & |& and newlines are words of
// their own. Nothing is expanded.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	end := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			end()
		case c == '\n' || c == ';':
			end()
			words = append(words, string(c))
		case c == '&' && (i > 0 && (s[i-1] == '>' || s[i-1] == '<') || i+1 < len(s) && s[i+1] == '>'):
			// Redirections: 2>&1, <&3, &>file.
			inWord = true
			cur.WriteByte(c)
		case c == '&' || c == '|':
			end()
			op := string(c)
			if i+1 < len(s) && (s[i+1] == c || c == '|' && s[i+1] == '&') {
				op += string(s[i+1])
				i++
			}
			words = append(words, op)
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				cur.WriteString(s[i+1:])
				i = len(s)
				break
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		case c == '\\' && i+1 < len(s):
			inWord = true
			i++
			if s[i] != '\n' {
				cur.WriteByte(s[i])
			}
		case c == '#' && !inWord:
			// A comment runs to the end of the line.
			for i < len(s) && s[i] != '\n' {
				i++
			}
			i--
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	end()
	return words
}
