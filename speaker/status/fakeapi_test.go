package status

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/internal/scheme"
)

// fakeAPI is an in-memory API server for ServiceBGPStatus objects in one
// namespace, with the status subresource's semantics (create ignores status,
// PUT .../status changes only status and checks resourceVersion, PATCH
// .../status applies a JSON merge patch to the status only). It fails
// requests on demand, to test retries.
type fakeAPI struct {
	t  *testing.T
	ns string

	mu      sync.Mutex
	objs    map[string]*v1beta1.ServiceBGPStatus
	rv      int
	calls   map[string]int // by "VERB what", e.g. "PUT status"
	failFor map[string]int // the next n calls of "VERB what" fail with 500
	failAll int            // the next n calls of any kind fail with 500

	delay       time.Duration // each call takes at least this long (outside mu)
	inFlight    int
	maxInFlight int            // the most calls served at once
	busy        map[string]int // calls in flight by object name
}

func newFakeAPI(t *testing.T, ns string) (*fakeAPI, rest.Interface) {
	f := &fakeAPI{t: t, ns: ns, objs: map[string]*v1beta1.ServiceBGPStatus{},
		calls: map[string]int{}, failFor: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	gv := v1beta1.GroupVersion
	c, err := rest.RESTClientFor(&rest.Config{Host: srv.URL, ContentConfig: rest.ContentConfig{
		GroupVersion: &gv, ContentType: runtime.ContentTypeJSON,
		NegotiatedSerializer: serializer.NewCodecFactory(scheme.Scheme).WithoutConversion(),
	}, APIPath: "/apis", QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

// fail makes the next n calls of op ("GET list", "GET one", "POST", "PUT
// status", "PATCH status", "DELETE") fail.
func (f *fakeAPI) fail(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failFor[op] = n
}

// failAny makes the next n calls of any kind fail.
func (f *fakeAPI) failAny(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAll = n
}

// counts returns the calls so far by operation, leaving out Lists.
func (f *fakeAPI) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for op, n := range f.calls {
		if op != "GET list" && n > 0 {
			out[op] = n
		}
	}
	return out
}

func (f *fakeAPI) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// put stores an object as if someone had created it and written its status.
func (f *fakeAPI) put(o *v1beta1.ServiceBGPStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rv++
	o = o.DeepCopy()
	o.Namespace = f.ns
	o.ResourceVersion = strconv.Itoa(f.rv)
	f.objs[o.Name] = o
}

// remove deletes an object behind the writer's back.
func (f *fakeAPI) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objs, name)
}

// get returns a copy of an object.
func (f *fakeAPI) get(name string) (*v1beta1.ServiceBGPStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objs[name]
	if !ok {
		return nil, false
	}
	return o.DeepCopy(), true
}

// names lists the stored objects' names, sorted.
func (f *fakeAPI) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for n := range f.objs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	prefix := "/apis/metallb.io/v1beta1/namespaces/" + f.ns + "/servicebgpstatuses"
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		f.t.Errorf("fake API: unexpected path %s %s", r.Method, r.URL.Path)
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "no such path")
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	name, sub := parts[0], ""
	if len(parts) > 1 {
		sub = parts[1]
	}
	op := r.Method
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	delay := f.delay
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if name != "" {
		f.mu.Lock()
		if f.busy == nil {
			f.busy = map[string]int{}
		}
		f.busy[name]++
		if f.busy[name] > 1 {
			f.t.Errorf("fake API: two calls on %s at once", name)
		}
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.busy[name]--
			f.mu.Unlock()
		}()
	}
	time.Sleep(delay)
	switch {
	case r.Method == http.MethodGet && name == "":
		op = "GET list"
	case r.Method == http.MethodGet:
		op = "GET one"
	case sub != "":
		op += " " + sub
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if f.failAll > 0 || f.failFor[op] > 0 {
		if f.failAll > 0 {
			f.failAll--
		} else {
			f.failFor[op]--
		}
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "injected failure")
		return
	}
	switch op {
	case "GET list":
		sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
		if err != nil {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
			return
		}
		list := v1beta1.ServiceBGPStatusList{TypeMeta: metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "ServiceBGPStatusList"},
			ListMeta: metav1.ListMeta{ResourceVersion: strconv.Itoa(f.rv)}}
		for _, o := range f.objs {
			if sel.Matches(labels.Set(o.Labels)) {
				list.Items = append(list.Items, *o)
			}
		}
		writeJSON(w, http.StatusOK, &list)
	case "GET one":
		o, ok := f.objs[name]
		if !ok {
			writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, name+" not found")
			return
		}
		writeJSON(w, http.StatusOK, o)
	case "POST":
		var o v1beta1.ServiceBGPStatus
		if !readJSON(w, r, &o) {
			return
		}
		if _, ok := f.objs[o.Name]; ok {
			writeStatus(w, http.StatusConflict, metav1.StatusReasonAlreadyExists, o.Name+" exists")
			return
		}
		f.rv++
		o.Namespace, o.ResourceVersion, o.Status = f.ns, strconv.Itoa(f.rv), v1beta1.ServiceBGPStatusStatus{}
		f.objs[o.Name] = &o
		writeJSON(w, http.StatusCreated, &o)
	case "PUT status":
		var o v1beta1.ServiceBGPStatus
		if !readJSON(w, r, &o) {
			return
		}
		cur, ok := f.objs[name]
		if !ok {
			writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, name+" not found")
			return
		}
		if o.ResourceVersion != cur.ResourceVersion {
			writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict, name+" was modified")
			return
		}
		f.rv++
		cur.Status, cur.ResourceVersion = o.Status, strconv.Itoa(f.rv)
		writeJSON(w, http.StatusOK, cur)
	case "PATCH status":
		if ct := r.Header.Get("Content-Type"); ct != "application/merge-patch+json" {
			writeStatus(w, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType, ct)
			return
		}
		cur, ok := f.objs[name]
		if !ok {
			writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, name+" not found")
			return
		}
		patch, err := io.ReadAll(r.Body)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
			return
		}
		doc, _ := json.Marshal(cur)
		merged, err := jsonpatch.MergePatch(doc, patch)
		var next v1beta1.ServiceBGPStatus
		if err == nil {
			err = json.Unmarshal(merged, &next)
		}
		if err != nil {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
			return
		}
		f.rv++
		// The status subresource changes only the status.
		cur.Status, cur.ResourceVersion = next.Status, strconv.Itoa(f.rv)
		writeJSON(w, http.StatusOK, cur)
	case "DELETE":
		if _, ok := f.objs[name]; !ok {
			writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, name+" not found")
			return
		}
		delete(f.objs, name)
		writeStatus(w, http.StatusOK, "", "deleted")
	default:
		f.t.Errorf("fake API: unexpected call %s %s", r.Method, r.URL.Path)
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, op)
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, into any) bool {
	data, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(data, into)
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, obj runtime.Object) {
	if o, ok := obj.(*v1beta1.ServiceBGPStatus); ok {
		o.APIVersion, o.Kind = v1beta1.GroupVersion.String(), "ServiceBGPStatus"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(obj)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status: metav1.StatusFailure, Code: int32(code), Reason: reason, Message: msg}
	if code < 300 {
		st.Status = metav1.StatusSuccess
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(&st)
}

// source is a mutable status.Source.
type source struct {
	mu sync.Mutex
	m  map[string]Status
}

func (s *source) set(key string, st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Status{}
	}
	s.m[key] = st
}

func (s *source) drop(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

func (s *source) get(key string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.m[key]
	return st, ok
}

func (f *fakeAPI) String() string { return fmt.Sprint(f.names()) }
