package watch

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// A BFDProfile out of MetalLB's ranges is rejected by the same rule the
// webhook applies (validation.BFDProfile); valid ones pass through.
func TestConfigFromBFDProfileRanges(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	tests := []struct {
		name string
		spec v1beta1.BFDProfileSpec
		err  string
	}{
		{name: "defaults", spec: v1beta1.BFDProfileSpec{}},
		{name: "bounds", spec: v1beta1.BFDProfileSpec{ReceiveInterval: u(10), TransmitInterval: u(60000), DetectMultiplier: u(2), MinimumTTL: u(254)}},
		{name: "receive too fast", spec: v1beta1.BFDProfileSpec{ReceiveInterval: u(9)}, err: `BFDProfile "f": spec.receiveInterval: 9 is outside 10-60000`},
		{name: "multiplier 1", spec: v1beta1.BFDProfileSpec{DetectMultiplier: u(1)}, err: "spec.detectMultiplier: 1 is outside 2-255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, problems := ConfigFrom(Objects{Namespace: "metallb-system",
				BFDProfiles: []*v1beta1.BFDProfile{{ObjectMeta: metav1.ObjectMeta{Name: "f"}, Spec: tt.spec}}})
			_, kept := cfg.BFDProfiles["f"]
			if tt.err == "" {
				if len(problems) > 0 || !kept {
					t.Fatalf("problems %v, kept %v", problems, kept)
				}
				return
			}
			if kept || len(problems) != 1 || !strings.Contains(problems[0].Error(), tt.err) {
				t.Fatalf("problems %v, kept %v; want %q", problems, kept, tt.err)
			}
		})
	}
}
