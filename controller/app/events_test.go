package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/controller/eventgate"
)

// TestEventsAreProtobuf: the controller's Events reach the apiserver in
// protobuf, as everything else it sends to built-in types (client-go's event
// sink sends JSON unless told otherwise), and a repeated Event still raises
// the count of the first with a strategic merge patch, whose body is JSON
// whatever the client's content type.
func TestEventsAreProtobuf(t *testing.T) {
	type request struct {
		method, contentType, accept string
		body                        []byte
	}
	got := make(chan request, 10)
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	if !ok {
		t.Fatal("no protobuf serializer")
	}
	var mu sync.Mutex
	var created []byte // the first Event, as posted
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/ns/events") {
			got <- request{r.Method, r.Header.Get("Content-Type"), r.Header.Get("Accept"), body}
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			created = body
		}
		// Answer with the first Event as posted (the client accepts protobuf).
		w.Header().Set("Content-Type", runtime.ContentTypeProtobuf)
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = w.Write(created)
	}))
	defer srv.Close()

	rec, stop, err := newRecorder(&rest.Config{Host: srv.URL}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", UID: "u1"}}
	next := func() request {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no Event request within 10s")
		}
		return request{}
	}

	rec.Eventf(svc, corev1.EventTypeNormal, "IPAllocated", "Assigned IP %q", []string{"192.0.2.1"})
	r := next()
	if r.method != http.MethodPost || r.contentType != runtime.ContentTypeProtobuf {
		t.Fatalf("Event sent by %s as %q, want POST as %q", r.method, r.contentType, runtime.ContentTypeProtobuf)
	}
	if !strings.HasPrefix(r.accept, runtime.ContentTypeProtobuf) {
		t.Fatalf("Accept %q, want protobuf first", r.accept)
	}
	if !bytes.HasPrefix(r.body, []byte("k8s\x00")) {
		t.Fatalf("the body is not a protobuf object: %q", r.body)
	}
	obj, _, err := info.Serializer.Decode(r.body, nil, &corev1.Event{})
	if err != nil {
		t.Fatalf("decoding the Event: %v", err)
	}
	ev := obj.(*corev1.Event)
	if ev.Reason != "IPAllocated" || ev.InvolvedObject.Name != "svc" || ev.Message != `Assigned IP ["192.0.2.1"]` {
		t.Fatalf("Event %+v", ev)
	}

	// The same Event again: client-go's correlator patches the first one.
	rec.Eventf(svc, corev1.EventTypeNormal, "IPAllocated", "Assigned IP %q", []string{"192.0.2.1"})
	r = next()
	if r.method != http.MethodPatch || r.contentType != "application/strategic-merge-patch+json" {
		t.Fatalf("repeated Event sent by %s as %q, want PATCH as application/strategic-merge-patch+json", r.method, r.contentType)
	}
	var patch struct {
		Count int32 `json:"count"`
	}
	if err := json.Unmarshal(r.body, &patch); err != nil || patch.Count != 2 {
		t.Fatalf("patch %q (%v), want JSON with count 2", r.body, err)
	}
}

// eventServer answers Event POSTs and hands over when each arrived.
func eventServer(t *testing.T) (*rest.Config, <-chan time.Time) {
	arrived := make(chan time.Time, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v1/namespaces/ns/events") {
			arrived <- time.Now()
		}
		w.Header().Set("Content-Type", runtime.ContentTypeProtobuf)
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}, arrived
}

func waitArrival(t *testing.T, arrived <-chan time.Time) time.Time {
	t.Helper()
	select {
	case at := <-arrived:
		return at
	case <-time.After(20 * time.Second):
		t.Fatal("no Event within 20s")
		return time.Time{}
	}
}

// TestEventsWaitForServiceWrites: with the gate, an Event recorded while a
// Service write is in flight reaches the apiserver no sooner than Quiet
// after the write ended.
func TestEventsWaitForServiceWrites(t *testing.T) {
	const maxHold = 10 * time.Second
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc", UID: "u1"}}

	rc, arrived := eventServer(t)
	gate := eventgate.New(eventgate.Options{Quiet: eventgate.DefaultQuiet, MaxHold: maxHold})
	rec, stop, err := newRecorder(rc, gate)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	done := gate.Writing()
	rec.Eventf(svc, corev1.EventTypeNormal, "IPAllocated", "Assigned IP %q", []string{"192.0.2.1"})
	ended := time.Now()
	done()
	if at := waitArrival(t, arrived); at.Sub(ended) < eventgate.DefaultQuiet || at.Sub(ended) > maxHold/2 {
		t.Errorf("the Event arrived %v after the write ended, want after Quiet %v and long before its MaxHold %v",
			at.Sub(ended), eventgate.DefaultQuiet, maxHold)
	}

	// Stopped with Events held, the recorder writes them before it
	// returns.
	rc, arrived = eventServer(t)
	gate = eventgate.New(eventgate.Options{Quiet: eventgate.DefaultQuiet, MaxHold: maxHold})
	rec, stop2, err := newRecorder(rc, gate)
	if err != nil {
		t.Fatal(err)
	}
	done = gate.Writing() // never ends
	defer done()
	for i := range 3 {
		rec.Eventf(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("s%d", i), UID: types.UID(fmt.Sprint(i))}},
			corev1.EventTypeNormal, "IPAllocated", "Assigned IP %q", []string{"192.0.2.2"})
	}
	stop2()
	if n := len(arrived); n != 3 {
		t.Errorf("stopped with 3 Events held, %d were written by the time it returned", n)
	}
}
