package watch

import (
	"encoding/json"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// The cached objects keep name, namespace, UID, resourceVersion, labels and
// whether they are being deleted, readable through the informers' accessor,
// in 80 bytes of metadata.
func TestMetaKeepsWhatTheSpeakerReads(t *testing.T) {
	now := metav1.Now()
	full := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "front", UID: "u1", ResourceVersion: "42",
		Labels: map[string]string{"tier": "edge"}, Annotations: map[string]string{"a": "b"}, Generation: 3,
		DeletionTimestamp: &now, Finalizers: []string{"f"}}}
	svc := svcFrom(full)
	acc, err := meta.Accessor(svc)
	if err != nil {
		t.Fatal(err)
	}
	if acc.GetNamespace() != "web" || acc.GetName() != "front" || acc.GetUID() != "u1" || acc.GetResourceVersion() != "42" ||
		acc.GetLabels()["tier"] != "edge" || acc.GetDeletionTimestamp() == nil {
		t.Fatalf("accessor reads %+v", svc.Meta)
	}
	if key, err := cache.MetaNamespaceKeyFunc(svc); err != nil || key != "web/front" {
		t.Fatalf("key %q %v", key, err)
	}
	back := svc.Service()
	if back.Name != "front" || back.Namespace != "web" || back.UID != "u1" || back.ResourceVersion != "42" ||
		back.Labels["tier"] != "edge" || back.DeletionTimestamp == nil {
		t.Fatalf("rebuilt metadata %+v", back.ObjectMeta)
	}
	full.DeletionTimestamp = nil
	if svcFrom(full).Service().DeletionTimestamp != nil {
		t.Fatal("a Service not being deleted reads as deleted")
	}
	cp := svc.DeepCopyObject().(*Svc)
	cp.Labels["tier"] = "changed"
	if svc.Labels["tier"] != "edge" {
		t.Fatal("a deep copy shares the labels")
	}

	sl := sliceFrom(&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "front-x", ResourceVersion: "7",
		Labels: map[string]string{discoveryv1.LabelServiceName: "front"}}})
	if key, err := cache.MetaNamespaceKeyFunc(sl); err != nil || key != "web/front-x" || sl.GetResourceVersion() != "7" || sl.Service != "front" {
		t.Fatalf("slice key %q %v, %+v", key, err, sl)
	}
	if n := unsafe.Sizeof(Meta{}); n > 80 {
		t.Errorf("Meta is %d bytes, want at most 80", n)
	}
}

// A cached Service's type and traffic policy share the constants' bytes, not
// the decoded copies.
func TestSvcSharesKnownStrings(t *testing.T) {
	var s corev1.Service
	if err := json.Unmarshal([]byte(`{"spec":{"type":"LoadBalancer","externalTrafficPolicy":"Local"}}`), &s); err != nil {
		t.Fatal(err)
	}
	svc := svcFrom(&s)
	if svc.Type != corev1.ServiceTypeLoadBalancer || svc.Policy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Fatalf("type %q policy %q", svc.Type, svc.Policy)
	}
	if unsafe.StringData(string(svc.Type)) != unsafe.StringData(string(corev1.ServiceTypeLoadBalancer)) ||
		unsafe.StringData(string(svc.Policy)) != unsafe.StringData(string(corev1.ServiceExternalTrafficPolicyLocal)) {
		t.Fatal("the cached Service holds its own copies of the type and policy")
	}
	s.Spec.Type = "Other"
	if svcFrom(&s).Type != "Other" {
		t.Fatal("an unknown type is not kept as it is")
	}
}
