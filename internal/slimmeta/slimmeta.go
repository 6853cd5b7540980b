// Package slimmeta is the metadata of the compact objects the speaker's and
// the controller's informer caches hold instead of whole Services and
// EndpointSlices: name, namespace, UID, resourceVersion and labels, in 72
// bytes where a metav1.ObjectMeta takes 232.
//
// Meta implements every method of metav1.Object except those of generation,
// creation and deletion time, which the embedding type implements for
// whichever of them it keeps. The fields nobody keeps (generateName,
// selfLink, deletion grace period, annotations, finalizers, owner references,
// managed fields) read as empty and setting them does nothing: the informers
// only read them.
package slimmeta

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Meta is the kept metadata; see the package comment.
type Meta struct {
	Name, Namespace string
	UID             types.UID
	ResourceVersion string
	Labels          map[string]string
}

// Of returns the kept part of m.
func Of(m *metav1.ObjectMeta) Meta {
	return Meta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, Labels: m.Labels}
}

// ObjectMeta returns the kept fields as a metav1.ObjectMeta.
func (m *Meta) ObjectMeta() metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Labels: m.Labels}
}

// GetNamespace implements metav1.Object.
func (m *Meta) GetNamespace() string { return m.Namespace }

// SetNamespace implements metav1.Object.
func (m *Meta) SetNamespace(ns string) { m.Namespace = ns }

// GetName implements metav1.Object.
func (m *Meta) GetName() string { return m.Name }

// SetName implements metav1.Object.
func (m *Meta) SetName(name string) { m.Name = name }

// GetUID implements metav1.Object.
func (m *Meta) GetUID() types.UID { return m.UID }

// SetUID implements metav1.Object.
func (m *Meta) SetUID(uid types.UID) { m.UID = uid }

// GetResourceVersion implements metav1.Object.
func (m *Meta) GetResourceVersion() string { return m.ResourceVersion }

// SetResourceVersion implements metav1.Object.
func (m *Meta) SetResourceVersion(v string) { m.ResourceVersion = v }

// GetLabels implements metav1.Object.
func (m *Meta) GetLabels() map[string]string { return m.Labels }

// SetLabels implements metav1.Object.
func (m *Meta) SetLabels(l map[string]string) { m.Labels = l }

// GetGenerateName implements metav1.Object (not kept).
func (m *Meta) GetGenerateName() string { return "" }

// SetGenerateName implements metav1.Object (not kept).
func (m *Meta) SetGenerateName(string) {}

// GetSelfLink implements metav1.Object (not kept).
func (m *Meta) GetSelfLink() string { return "" }

// SetSelfLink implements metav1.Object (not kept).
func (m *Meta) SetSelfLink(string) {}

// GetDeletionGracePeriodSeconds implements metav1.Object (not kept).
func (m *Meta) GetDeletionGracePeriodSeconds() *int64 { return nil }

// SetDeletionGracePeriodSeconds implements metav1.Object (not kept).
func (m *Meta) SetDeletionGracePeriodSeconds(*int64) {}

// GetAnnotations implements metav1.Object (not kept here).
func (m *Meta) GetAnnotations() map[string]string { return nil }

// SetAnnotations implements metav1.Object (not kept here).
func (m *Meta) SetAnnotations(map[string]string) {}

// GetFinalizers implements metav1.Object (not kept).
func (m *Meta) GetFinalizers() []string { return nil }

// SetFinalizers implements metav1.Object (not kept).
func (m *Meta) SetFinalizers([]string) {}

// GetOwnerReferences implements metav1.Object (not kept).
func (m *Meta) GetOwnerReferences() []metav1.OwnerReference { return nil }

// SetOwnerReferences implements metav1.Object (not kept).
func (m *Meta) SetOwnerReferences([]metav1.OwnerReference) {}

// GetManagedFields implements metav1.Object (not kept).
func (m *Meta) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }

// SetManagedFields implements metav1.Object (not kept).
func (m *Meta) SetManagedFields([]metav1.ManagedFieldsEntry) {}
