package events

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/internal/scheme/lean"
)

// request is one call the fake apiserver saw.
type request struct {
	method, path string
	body         map[string]any
}

// fakeAPI answers Event creates and patches; answer may override the status.
type fakeAPI struct {
	mu     sync.Mutex
	calls  []request
	answer func(n int, r request) int // status code for the n-th call (0-based); nil: success
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	req := request{method: r.Method, path: r.URL.Path}
	_ = json.Unmarshal(raw, &req.body)
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, req)
	answer := f.answer
	f.mu.Unlock()
	code := http.StatusCreated
	if r.Method == http.MethodPatch {
		code = http.StatusOK
	}
	if answer != nil {
		if c := answer(n, req); c != 0 {
			code = c
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if code >= 300 {
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Code: int32(code), Reason: reasonFor(code)})
		return
	}
	_, _ = w.Write(raw)
}

func (f *fakeAPI) methods() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.method)
	}
	return out
}

func coreClient(t *testing.T, url string) rest.Interface {
	t.Helper()
	gv := corev1.SchemeGroupVersion
	c, err := rest.RESTClientFor(&rest.Config{Host: url, APIPath: "/api", ContentConfig: rest.ContentConfig{
		GroupVersion: &gv, ContentType: runtime.ContentTypeJSON, NegotiatedSerializer: lean.Codecs.WithoutConversion()}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newRecorder(t *testing.T, f *fakeAPI, o Options) *Recorder {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	o.Client = coreClient(t, srv.URL)
	o.Scheme = lean.Scheme
	o.Component, o.Host = "ecmplb-speaker", "node1"
	o.Logger = slog.New(slog.DiscardHandler)
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	r := New(o)
	t.Cleanup(func() { r.Close(time.Second) })
	return r
}

func service(name, uid string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: name, UID: types.UID(uid), ResourceVersion: "7"}}
}

func TestEventFields(t *testing.T) {
	f := &fakeAPI{}
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	r := newRecorder(t, f, Options{Now: c.now})
	r.Eventf(service("front", "u1"), corev1.EventTypeNormal, "Announced", "announcing %s", "203.0.113.5/32")
	r.Eventf(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", UID: "n"}}, corev1.EventTypeWarning, "Bad", "x")
	r.Close(5 * time.Second)
	if len(f.calls) != 2 {
		t.Fatalf("calls %v, want 2 creates", f.methods())
	}
	got := f.calls[0]
	if got.method != http.MethodPost || got.path != "/api/v1/namespaces/web/events" {
		t.Fatalf("first call %s %s", got.method, got.path)
	}
	ref := got.body["involvedObject"].(map[string]any)
	for k, want := range map[string]string{"kind": "Service", "apiVersion": "v1", "namespace": "web", "name": "front", "uid": "u1", "resourceVersion": "7"} {
		if ref[k] != want {
			t.Errorf("involvedObject.%s = %v, want %q", k, ref[k], want)
		}
	}
	for k, want := range map[string]any{"type": "Normal", "reason": "Announced", "message": "announcing 203.0.113.5/32",
		"count": float64(1), "reportingComponent": "ecmplb-speaker", "reportingInstance": "node1", "firstTimestamp": "2026-12-01T10:00:00Z"} {
		if got.body[k] != want {
			t.Errorf("%s = %v, want %v", k, got.body[k], want)
		}
	}
	if name := got.body["metadata"].(map[string]any)["name"].(string); !strings.HasPrefix(name, "front.") {
		t.Errorf("event name %q, want front.<time>", name)
	}
	if p := f.calls[1].path; p != "/api/v1/namespaces/default/events" {
		t.Errorf("a Node's Event went to %s, want the default namespace", p)
	}
}

func TestRepeatRaisesTheCount(t *testing.T) {
	f := &fakeAPI{}
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	r := newRecorder(t, f, Options{Now: c.now})
	svc := service("front", "u1")
	for range 3 {
		r.Eventf(svc, corev1.EventTypeWarning, "AnnounceFailed", "no peer")
		c.add(time.Second)
	}
	r.Eventf(svc, corev1.EventTypeWarning, "AnnounceFailed", "another message")
	r.Eventf(service("front", "u2"), corev1.EventTypeWarning, "AnnounceFailed", "no peer") // same name, new object
	r.Close(5 * time.Second)
	if got, want := strings.Join(f.methods(), " "), "POST PATCH PATCH POST POST"; got != want {
		t.Fatalf("calls %s, want %s", got, want)
	}
	created := f.calls[0].body["metadata"].(map[string]any)["name"].(string)
	for i, want := range []float64{2, 3} {
		p := f.calls[1+i]
		if !strings.HasSuffix(p.path, "/events/"+created) || p.body["count"] != want || p.body["lastTimestamp"] == nil {
			t.Errorf("patch %d: %s %v, want count %v on %s", i, p.path, p.body, want, created)
		}
	}
	if w, p, d := r.Stats(); w != 3 || p != 2 || d != 0 {
		t.Errorf("stats written %d patched %d dropped %d, want 3 2 0", w, p, d)
	}
}

func TestExpiredEventIsWrittenAgain(t *testing.T) {
	f := &fakeAPI{answer: func(_ int, r request) int {
		if r.method == http.MethodPatch {
			return http.StatusNotFound
		}
		return 0
	}}
	r := newRecorder(t, f, Options{})
	svc := service("front", "u1")
	r.Eventf(svc, corev1.EventTypeNormal, "Announced", "same")
	r.Eventf(svc, corev1.EventTypeNormal, "Announced", "same")
	r.Eventf(svc, corev1.EventTypeNormal, "Announced", "same")
	r.Close(5 * time.Second)
	if got, want := strings.Join(f.methods(), " "), "POST PATCH POST PATCH POST"; got != want {
		t.Fatalf("calls %s, want %s", got, want)
	}
}

func TestTransientErrorsAreRetried(t *testing.T) {
	f := &fakeAPI{answer: func(n int, _ request) int {
		if n < 2 {
			return http.StatusServiceUnavailable
		}
		return 0
	}}
	r := newRecorder(t, f, Options{Attempts: 3})
	r.Eventf(service("front", "u1"), corev1.EventTypeNormal, "Announced", "x")
	r.Close(5 * time.Second)
	if w, _, d := r.Stats(); w != 1 || d != 0 || len(f.methods()) != 3 {
		t.Fatalf("written %d dropped %d after calls %v, want 1 written on the third try", w, d, f.methods())
	}

	f2 := &fakeAPI{answer: func(int, request) int { return http.StatusServiceUnavailable }}
	r2 := newRecorder(t, f2, Options{Attempts: 3})
	r2.Eventf(service("front", "u1"), corev1.EventTypeNormal, "Announced", "x")
	r2.Close(5 * time.Second)
	if w, _, d := r2.Stats(); w != 0 || d != 1 || len(f2.methods()) != 3 {
		t.Fatalf("written %d dropped %d after calls %v, want 3 tries then dropped", w, d, f2.methods())
	}
}

func TestRateLimitPerObject(t *testing.T) {
	f := &fakeAPI{}
	c := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	r := newRecorder(t, f, Options{Now: c.now, Burst: 3, Refill: time.Minute})
	a, b := service("a", "ua"), service("b", "ub")
	for i := range 5 {
		r.Eventf(a, corev1.EventTypeNormal, "Flap", "flap %d", i)
	}
	r.Eventf(b, corev1.EventTypeNormal, "Flap", "flap")
	c.add(time.Minute) // one token back for a
	r.Eventf(a, corev1.EventTypeNormal, "Flap", "after a minute")
	r.Eventf(a, corev1.EventTypeNormal, "Flap", "and one more")
	r.Close(5 * time.Second)
	var msgs []string
	for _, call := range f.calls {
		msgs = append(msgs, call.body["message"].(string))
	}
	want := "flap 0|flap 1|flap 2|flap|after a minute"
	if got := strings.Join(msgs, "|"); got != want {
		t.Fatalf("written %q, want %q", got, want)
	}
	if _, _, d := r.Stats(); d != 3 {
		t.Errorf("dropped %d, want 3", d)
	}
}

func TestEventfNeverBlocks(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f := &fakeAPI{answer: func(int, request) int {
		once.Do(func() { close(entered) })
		<-release
		return 0
	}}
	r := newRecorder(t, f, Options{QueueSize: 3})
	r.Eventf(service("s0", "u0"), corev1.EventTypeNormal, "R", "m")
	<-entered // the writer holds the first Event; the queue is empty
	done := make(chan struct{})
	go func() {
		for i := 1; i < 50; i++ {
			r.Eventf(service("s", "u"), corev1.EventTypeNormal, "R", "m%d", i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Eventf blocked while the apiserver did not answer")
	}
	close(release)
	r.Close(5 * time.Second)
	if w, _, d := r.Stats(); w != 4 || d != 46 {
		t.Fatalf("written %d dropped %d, want 4 (1 in flight + a queue of 3) and 46", w, d)
	}
}

func TestMessageIsCutOnARune(t *testing.T) {
	f := &fakeAPI{}
	r := newRecorder(t, f, Options{})
	r.Eventf(service("s", "u"), corev1.EventTypeNormal, "R", "%s", strings.Repeat("é", 700)) // 1400 bytes
	r.Close(5 * time.Second)
	msg := f.calls[0].body["message"].(string)
	if len(msg) > MaxMessage || len(msg) < MaxMessage-1 || !utf8.ValidString(msg) {
		t.Fatalf("message of %d bytes, valid UTF-8 %v; want at most %d, cut on a rune", len(msg), utf8.ValidString(msg), MaxMessage)
	}
}

func reasonFor(code int) metav1.StatusReason {
	switch code {
	case http.StatusNotFound:
		return metav1.StatusReasonNotFound
	case http.StatusServiceUnavailable:
		return metav1.StatusReasonServiceUnavailable
	}
	return metav1.StatusReasonUnknown
}

func TestCloseGivesUpAfterItsGrace(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	f := &fakeAPI{answer: func(int, request) int { <-hang; return 0 }}
	r := newRecorder(t, f, Options{})
	for i := range 3 {
		r.Eventf(service("s", "u"), corev1.EventTypeNormal, "R", "m%d", i)
	}
	closed := make(chan struct{})
	go func() { r.Close(50 * time.Millisecond); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return while the apiserver hung")
	}
	if w, _, d := r.Stats(); w != 0 || d != 3 {
		t.Fatalf("written %d dropped %d, want 0 and 3", w, d)
	}
}
