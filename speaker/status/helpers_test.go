package status

import (
	"time"

	"k8s.io/client-go/rest"
)

func newTestWriter(c rest.Interface, node string, src *source, opts ...Option) *K8s {
	opts = append([]Option{WithBackoff(time.Millisecond, 20*time.Millisecond)}, opts...)
	return NewK8s(c, "metallb-system", node, src.get, quietLog(), opts...)
}
