package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/controller/reconciler"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

// TestServiceListWatch runs the Service informer's ListerWatcher against a
// real API server: a List in pages and the reflector's first List (one
// consistent List, whatever the page size) give each Service as
// reconciler.Compact makes it of the Service the typed client reads; a
// watch with initial events is refused; a watch from the List carries an
// update and a delete, and closes when stopped; an API error arrives as the
// API server's status.
func TestServiceListWatch(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"a", "b"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s%d", i), Namespace: []string{"a", "b"}[i%2],
			Labels: map[string]string{"team": "x"}, Annotations: map[string]string{v1beta1.AnnotationAllowSharedIP: "k", "other": "y"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "x"},
				Ports: []corev1.ServicePort{{Port: int32(80 + i), Protocol: corev1.ProtocolUDP}}}}
		if i == 3 {
			svc.Spec.Type = corev1.ServiceTypeClusterIP
		}
		created, err := cs.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 && i != 3 {
			created.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: fmt.Sprintf("203.0.113.%d", i)}}
			if _, err := cs.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// What the typed client reads, compacted, by namespace/name.
	want := func() map[types.NamespacedName]*reconciler.Svc {
		list, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[types.NamespacedName]*reconciler.Svc{}
		for i := range list.Items {
			s := &list.Items[i]
			out[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = reconciler.Compact(s)
		}
		return out
	}
	expect := want()
	check := func(what string, s *reconciler.Svc) {
		t.Helper()
		w, ok := expect[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}]
		if !ok {
			t.Errorf("%s: unexpected Service %s/%s", what, s.Namespace, s.Name)
		} else if !reflect.DeepEqual(s, w) {
			t.Errorf("%s %s/%s:\n got %+v\nwant %+v", what, s.Namespace, s.Name, s, w)
		}
	}

	lw, err := serviceListWatch(env.Config, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	seen, rv, next := 0, "", ""
	for page := 0; page == 0 || next != ""; page++ {
		obj, err := lw.ListWithContext(ctx, metav1.ListOptions{Limit: 3, Continue: next})
		if err != nil {
			t.Fatal(err)
		}
		l := obj.(*reconciler.SvcList)
		for i := range l.Items {
			check("list", l.Items[i])
		}
		seen += len(l.Items)
		rv, next = l.ResourceVersion, l.Continue
	}
	if seen != len(expect) || rv == "" {
		t.Fatalf("listed %d of %d Services, resourceVersion %q", seen, len(expect), rv)
	}

	// The reflector's first List (resourceVersion "0", pages) is one
	// consistent List of every Service.
	obj, err := lw.ListWithContext(ctx, metav1.ListOptions{ResourceVersion: "0", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	first := obj.(*reconciler.SvcList)
	for i := range first.Items {
		check("first list", first.Items[i])
	}
	if len(first.Items) != len(expect) || first.Continue != "" || first.ResourceVersion == "" {
		t.Fatalf("first List: %d of %d Services, continue %q, resourceVersion %q", len(first.Items), len(expect), first.Continue, first.ResourceVersion)
	}
	// A watch with initial events is refused: the reflector lists instead.
	if _, err := lw.WatchWithContext(ctx, metav1.ListOptions{SendInitialEvents: new(true), AllowWatchBookmarks: true,
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}); err == nil {
		t.Fatal("a watch with initial events was served")
	}
	w, err := lw.WatchWithContext(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion, AllowWatchBookmarks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next1 := func() watch.Event {
		t.Helper()
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatal("watch closed")
			}
			return ev
		case <-ctx.Done():
			t.Fatal("no watch event")
		}
		return watch.Event{}
	}

	s0, err := cs.CoreV1().Services("a").Get(ctx, "s0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s0.Annotations[v1beta1.AnnotationAddressPool] = "p"
	if _, err := cs.CoreV1().Services("a").Update(ctx, s0, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect = want()
	for ev := next1(); ; ev = next1() {
		if ev.Type == watch.Bookmark {
			continue
		}
		if ev.Type != watch.Modified {
			t.Fatalf("event %s after an update", ev.Type)
		}
		s := ev.Object.(*reconciler.Svc)
		check("update", s)
		if v, _ := s.Annotation(v1beta1.AnnotationAddressPool); v != "p" {
			t.Errorf("update: annotations %v", s.Annotations)
		}
		break
	}
	if err := cs.CoreV1().Services("b").Delete(ctx, "s1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for ev := next1(); ; ev = next1() {
		if ev.Type == watch.Bookmark {
			continue
		}
		if s := ev.Object.(*reconciler.Svc); ev.Type != watch.Deleted || s.Namespace != "b" || s.Name != "s1" {
			t.Fatalf("event %s %s/%s after a delete", ev.Type, s.Namespace, s.Name)
		}
		break
	}

	w.Stop()
	for range w.ResultChan() {
	}

	// A resourceVersion the API server cannot serve is its error, as the
	// reflector needs it to decide to list again.
	if _, err := lw.ListWithContext(ctx, metav1.ListOptions{ResourceVersion: "x"}); err == nil {
		t.Error("a List at a malformed resourceVersion: no error")
	}
	if _, err := lw.WatchWithContext(ctx, metav1.ListOptions{ResourceVersion: "x"}); err == nil {
		t.Error("a watch from a malformed resourceVersion: no error")
	}
}

// TestWatchErrorFrame: an ERROR event in the stream (the API server's 410
// when a watch's resourceVersion is too old) reaches the reflector as the
// API server's Status, which it recognises as expired, and the stream's end
// is io.EOF.
func TestWatchErrorFrame(t *testing.T) {
	status := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Code: http.StatusGone, Reason: metav1.StatusReasonExpired, Message: "too old resource version: 1 (5)"}
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), protobufType)
	if !ok {
		t.Fatal("no protobuf serializer")
	}
	var obj bytes.Buffer
	if err := info.Serializer.Encode(status, &obj); err != nil {
		t.Fatal(err)
	}
	ev := metav1.WatchEvent{Type: string(watch.Error), Object: runtime.RawExtension{Raw: obj.Bytes()}}
	frame, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	_ = binary.Write(&stream, binary.BigEndian, uint32(len(frame)))
	stream.Write(frame)
	d := &svcEvents{body: io.NopCloser(&stream), r: bufio.NewReader(&stream)}
	typ, got, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if typ != watch.Error {
		t.Fatalf("event %s, want ERROR", typ)
	}
	if err := apierrors.FromObject(got); !apierrors.IsResourceExpired(err) {
		t.Fatalf("%v (%T) is not an expired error", err, got)
	}
	if _, _, err := d.Decode(); err != io.EOF {
		t.Fatalf("after the last event: %v, want io.EOF", err)
	}
}
