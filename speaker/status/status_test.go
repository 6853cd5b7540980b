package status

import (
	"strings"
	"testing"
)

func TestObjectName(t *testing.T) {
	short := ObjectName("node1", "default/web")
	if short != "node1-default-web" {
		t.Errorf("short name %q", short)
	}
	longKey := "some-long-namespace-name/" + strings.Repeat("svc", 30)
	a := ObjectName("node1", longKey)
	b := ObjectName("node2", longKey)
	if len(a) > 63 || len(b) > 63 || a == b || a != ObjectName("node1", longKey) {
		t.Errorf("long names %q %q", a, b)
	}
	if ObjectName("Node1", "ns/x") != strings.ToLower(ObjectName("Node1", "ns/x")) {
		t.Error("names must be lower case")
	}
}
