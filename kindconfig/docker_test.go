package kindconfig

import "testing"

func TestBridgeName(t *testing.T) {
	a, b := BridgeName("elb-abc123"), BridgeName("elb-abc124")
	if a == b {
		t.Errorf("two networks share bridge %q", a)
	}
	if a != BridgeName("elb-abc123") {
		t.Error("bridge name not stable")
	}
	if len(a) > 15 {
		t.Errorf("%q longer than 15", a)
	}
}
