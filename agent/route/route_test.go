package route

import "testing"

func TestDecide(t *testing.T) {
	cases := []struct{ prompt, route, rest string }{
		{"/chat how do I create a map?", Chat, "how do I create a map?"},
		{"/build a todo app", Generate, "a todo app"},
		{"/both: explain and fix this", Both, "explain and fix this"},
		{"/chatty is not a prefix", Chat, "/chatty is not a prefix"},
		{"Create a simple HTML page with a button", Generate, "Create a simple HTML page with a button"},
		{"Create a Node.js Express API with a /hello endpoint", Generate, "Create a Node.js Express API with a /hello endpoint"},
		{"What is the capital of France?", Chat, "What is the capital of France?"}, // "api" inside "capital" is no keyword
		{"why does this loop never end?", Chat, "why does this loop never end?"},
		{"Please FIX the login bug", Generate, "Please FIX the login bug"},
		{"set up a full-stack project", Generate, "set up a full-stack project"},
		{"Why does the build fail?", Chat, "Why does the build fail?"},
		{"How should I fix this error?", Chat, "How should I fix this error?"},
		{"What does this API return", Chat, "What does this API return"},
		{"Is this database query safe?", Chat, "Is this database query safe?"},
		{"Can you create a login page?", Generate, "Can you create a login page?"},
		{"Could you explain this?", Chat, "Could you explain this?"},
	}
	for _, c := range cases {
		d := Decide(c.prompt, nil)
		if d.Route != c.route || d.Prompt != c.rest || d.Reason == "" {
			t.Errorf("Decide(%q) = %+v, want route %s prompt %q", c.prompt, d, c.route, c.rest)
		}
	}
	if d := Decide("deploy it", []string{"ship"}); d.Route != Chat {
		t.Errorf("custom keywords ignored: %+v", d)
	}
	if d := Decide("ship it", []string{"ship"}); d.Route != Generate {
		t.Errorf("custom keyword not used: %+v", d)
	}
}
