// Package lean is a scheme of only the types the speaker reads and writes:
// core/v1, discovery/v1 and metallb.io. internal/scheme holds every built-in
// group (client-go's scheme); importing that links every API group into a
// binary, which the speaker, a DaemonSet on every node, does not pay for.
package lean

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
)

// Scheme knows core/v1, discovery/v1, metallb.io/v1beta1 and v1beta2.
var Scheme = runtime.NewScheme()

// Codecs are Scheme's codecs.
var Codecs serializer.CodecFactory

func init() {
	utilruntime.Must(AddToScheme(Scheme))
	Codecs = serializer.NewCodecFactory(Scheme)
}

// AddToScheme adds the lean set of types to s.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, discoveryv1.AddToScheme, v1beta1.AddToScheme, v1beta2.AddToScheme} {
		if err := add(s); err != nil {
			return err
		}
	}
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	return nil
}
