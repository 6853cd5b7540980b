// Package coordination is a scheme of coordination.k8s.io/v1 alone: the
// Lease client of layer 2 mode (speaker/l2/liveness/lease.NewREST), which
// the speaker links without the full scheme of internal/scheme.
package coordination

import (
	coordv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// Scheme knows coordination.k8s.io/v1 (and the meta types of responses).
var Scheme = runtime.NewScheme()

// Codecs are Scheme's codecs.
var Codecs serializer.CodecFactory

func init() {
	utilruntime.Must(coordv1.AddToScheme(Scheme))
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	Codecs = serializer.NewCodecFactory(Scheme)
}
