package reconciler

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/internal/slimmeta"
)

// SvcMeta is the metadata an Svc keeps: slimmeta's (name, namespace, UID,
// resourceVersion, labels) plus generation and creation time, in 104 bytes
// where a metav1.ObjectMeta takes 232. It is a metav1.Object, as the cache's
// informer and controller-runtime's event sources need; of the fields it
// does not keep, getters return the zero value and setters do nothing (an
// Svc keeps its metallb.io annotations in Svc.Annotations, not here).
type SvcMeta struct {
	slimmeta.Meta
	Generation        int64
	CreationTimestamp metav1.Time
}

var _ metav1.Object = &SvcMeta{}

// objectMeta returns the kept fields as an ObjectMeta.
func (m *SvcMeta) objectMeta() metav1.ObjectMeta {
	out := m.Meta.ObjectMeta()
	out.Generation, out.CreationTimestamp = m.Generation, m.CreationTimestamp
	return out
}

// GetGeneration implements metav1.Object.
func (m *SvcMeta) GetGeneration() int64 { return m.Generation }

// SetGeneration implements metav1.Object.
func (m *SvcMeta) SetGeneration(g int64) { m.Generation = g }

// GetCreationTimestamp implements metav1.Object.
func (m *SvcMeta) GetCreationTimestamp() metav1.Time { return m.CreationTimestamp }

// SetCreationTimestamp implements metav1.Object.
func (m *SvcMeta) SetCreationTimestamp(t metav1.Time) { m.CreationTimestamp = t }

// GetDeletionTimestamp implements metav1.Object (not kept).
func (m *SvcMeta) GetDeletionTimestamp() *metav1.Time { return nil }

// SetDeletionTimestamp implements metav1.Object (not kept).
func (m *SvcMeta) SetDeletionTimestamp(*metav1.Time) {}
