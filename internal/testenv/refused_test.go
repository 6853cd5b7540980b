package testenv

import "testing"

func TestNamesField(t *testing.T) {
	for _, tc := range []struct {
		out, field string
		want       bool
	}{
		{`denied the request: IPAddressPool ns/p: spec.addresses[0]: bad`, "spec.addresses[0]", true},
		{`The BGPPeer "x" is invalid: spec: Invalid value: "object": one of peerASN or dynamicASN must be set`, "spec.peerASN", true},
		{`The BGPPeer "x" is invalid: spec: Invalid value: "object": one of myASN must be set`, "spec.peerASN", false},
		{`spec.addresses[1]: bad`, "spec.addresses[0]", false},
		{`peerASN: spec missing`, "spec.peerASN", false},
		{`metadata.name: in use`, "spec.name", false},
	} {
		if got := namesField(tc.out, tc.field); got != tc.want {
			t.Errorf("namesField(%q, %q) = %v, want %v", tc.out, tc.field, got, tc.want)
		}
	}
}
