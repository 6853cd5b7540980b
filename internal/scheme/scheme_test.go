package scheme_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/scheme"
)

func TestKnowsCoreAndMetalLBTypes(t *testing.T) {
	for _, obj := range []runtime.Object{
		&corev1.Service{}, &corev1.Node{}, &discoveryv1.EndpointSlice{},
		&v1beta1.IPAddressPool{}, &v1beta1.BGPPeer{}, &v1beta1.BGPAdvertisement{}, &v1beta1.BFDProfile{},
		&v1beta1.ServiceBGPStatus{}, &v1beta2.BGPPeer{}, &v1beta2.BGPPeerList{},
	} {
		gvks, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil || len(gvks) == 0 {
			t.Errorf("%T: %v", obj, err)
		}
	}
}
