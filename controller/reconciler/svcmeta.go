package reconciler

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// SvcMeta is the metadata an Svc keeps: name, namespace, UID,
// resourceVersion, generation, creation time and labels, in 112 bytes where
// a metav1.ObjectMeta takes 232. It is a metav1.Object, as the cache's
// informer and controller-runtime's event sources need; of the fields it
// does not keep, getters return the zero value and setters do nothing.
type SvcMeta struct {
	Name, Namespace, ResourceVersion string
	UID                              types.UID
	Generation                       int64
	CreationTimestamp                metav1.Time
	Labels                           map[string]string
}

var _ metav1.Object = &SvcMeta{}

// objectMeta returns the kept fields as an ObjectMeta.
func (m *SvcMeta) objectMeta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, CreationTimestamp: m.CreationTimestamp, Labels: m.Labels}
}

// GetNamespace implements metav1.Object.
func (m *SvcMeta) GetNamespace() string { return m.Namespace }

// SetNamespace implements metav1.Object.
func (m *SvcMeta) SetNamespace(ns string) { m.Namespace = ns }

// GetName implements metav1.Object.
func (m *SvcMeta) GetName() string { return m.Name }

// SetName implements metav1.Object.
func (m *SvcMeta) SetName(name string) { m.Name = name }

// GetGenerateName implements metav1.Object (not kept).
func (m *SvcMeta) GetGenerateName() string { return "" }

// SetGenerateName implements metav1.Object (not kept).
func (m *SvcMeta) SetGenerateName(string) {}

// GetUID implements metav1.Object.
func (m *SvcMeta) GetUID() types.UID { return m.UID }

// SetUID implements metav1.Object.
func (m *SvcMeta) SetUID(uid types.UID) { m.UID = uid }

// GetResourceVersion implements metav1.Object.
func (m *SvcMeta) GetResourceVersion() string { return m.ResourceVersion }

// SetResourceVersion implements metav1.Object.
func (m *SvcMeta) SetResourceVersion(v string) { m.ResourceVersion = v }

// GetGeneration implements metav1.Object.
func (m *SvcMeta) GetGeneration() int64 { return m.Generation }

// SetGeneration implements metav1.Object.
func (m *SvcMeta) SetGeneration(g int64) { m.Generation = g }

// GetSelfLink implements metav1.Object (not kept).
func (m *SvcMeta) GetSelfLink() string { return "" }

// SetSelfLink implements metav1.Object (not kept).
func (m *SvcMeta) SetSelfLink(string) {}

// GetCreationTimestamp implements metav1.Object.
func (m *SvcMeta) GetCreationTimestamp() metav1.Time { return m.CreationTimestamp }

// SetCreationTimestamp implements metav1.Object.
func (m *SvcMeta) SetCreationTimestamp(t metav1.Time) { m.CreationTimestamp = t }

// GetDeletionTimestamp implements metav1.Object (not kept).
func (m *SvcMeta) GetDeletionTimestamp() *metav1.Time { return nil }

// SetDeletionTimestamp implements metav1.Object (not kept).
func (m *SvcMeta) SetDeletionTimestamp(*metav1.Time) {}

// GetDeletionGracePeriodSeconds implements metav1.Object (not kept).
func (m *SvcMeta) GetDeletionGracePeriodSeconds() *int64 { return nil }

// SetDeletionGracePeriodSeconds implements metav1.Object (not kept).
func (m *SvcMeta) SetDeletionGracePeriodSeconds(*int64) {}

// GetLabels implements metav1.Object.
func (m *SvcMeta) GetLabels() map[string]string { return m.Labels }

// SetLabels implements metav1.Object.
func (m *SvcMeta) SetLabels(l map[string]string) { m.Labels = l }

// GetAnnotations implements metav1.Object; an Svc keeps its metallb.io
// annotations in Svc.Annotations, not here.
func (m *SvcMeta) GetAnnotations() map[string]string { return nil }

// SetAnnotations implements metav1.Object (not kept here).
func (m *SvcMeta) SetAnnotations(map[string]string) {}

// GetFinalizers implements metav1.Object (not kept).
func (m *SvcMeta) GetFinalizers() []string { return nil }

// SetFinalizers implements metav1.Object (not kept).
func (m *SvcMeta) SetFinalizers([]string) {}

// GetOwnerReferences implements metav1.Object (not kept).
func (m *SvcMeta) GetOwnerReferences() []metav1.OwnerReference { return nil }

// SetOwnerReferences implements metav1.Object (not kept).
func (m *SvcMeta) SetOwnerReferences([]metav1.OwnerReference) {}

// GetManagedFields implements metav1.Object (not kept: Svc.Changed holds
// what LastChange reads of them).
func (m *SvcMeta) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }

// SetManagedFields implements metav1.Object (not kept).
func (m *SvcMeta) SetManagedFields([]metav1.ManagedFieldsEntry) {}
