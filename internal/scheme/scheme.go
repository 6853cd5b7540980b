// Package scheme is the one runtime.Scheme set-up of the project: the core
// Kubernetes types and the metallb.io types, for the controller, the speaker and
// the test harness.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
)

// Scheme holds the core Kubernetes types and the metallb.io types (BGPPeer in
// both v1beta1 and v1beta2). It is shared: do not add to it.
var Scheme = runtime.NewScheme()

func init() { utilruntime.Must(AddToScheme(Scheme)) }

// AddToScheme adds the core Kubernetes types and the metallb.io types to s.
func AddToScheme(s *runtime.Scheme) error {
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return err
	}
	if err := v1beta1.AddToScheme(s); err != nil {
		return err
	}
	return v1beta2.AddToScheme(s)
}
