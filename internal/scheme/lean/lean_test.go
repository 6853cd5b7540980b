package lean_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/scheme"
	"github.com/ecmplb/ecmplb/internal/scheme/lean"
)

// The lean scheme knows what the speaker reads, writes and records Events on,
// under the same kinds as the full scheme, and nothing of other groups.
func TestLeanKnowsTheSpeakersTypes(t *testing.T) {
	for _, obj := range []runtime.Object{&corev1.Service{}, &corev1.Node{}, &corev1.Secret{}, &corev1.Event{},
		&discoveryv1.EndpointSlice{}, &v1beta1.IPAddressPool{}, &v1beta1.BGPAdvertisement{}, &v1beta1.Community{},
		&v1beta1.BFDProfile{}, &v1beta1.ServiceBGPStatus{}, &v1beta1.ConfigurationState{}, &v1beta2.BGPPeer{}} {
		got, _, err := lean.Scheme.ObjectKinds(obj)
		if err != nil {
			t.Errorf("%T: %v", obj, err)
			continue
		}
		want, _, _ := scheme.Scheme.ObjectKinds(obj)
		if got[0] != want[0] {
			t.Errorf("%T: kind %v, full scheme %v", obj, got[0], want[0])
		}
	}
	for _, gv := range scheme.Scheme.PrioritizedVersionsAllGroups() {
		switch gv.Group {
		case "", "discovery.k8s.io", "metallb.io":
			continue
		}
		if lean.Scheme.IsVersionRegistered(gv) {
			t.Errorf("lean scheme registers %v", gv)
		}
	}
}
