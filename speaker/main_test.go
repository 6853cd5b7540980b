package main

import "testing"

// --gc-percent applies unless GOGC is set, which the runtime already obeyed.
func TestGCPercentFor(t *testing.T) {
	unset := func(string) (string, bool) { return "", false }
	set := func(k string) (string, bool) { return "200", k == "GOGC" }
	if p, ok := gcPercentFor(unset, 50); !ok || p != 50 {
		t.Errorf("without GOGC: %d %v, want 50 true", p, ok)
	}
	if _, ok := gcPercentFor(set, 50); ok {
		t.Error("GOGC set: the flag must not override it")
	}
}
