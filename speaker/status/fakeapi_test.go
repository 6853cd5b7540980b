package status

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
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

// statusObject is a pointer to an object of a status kind (T): what the fake
// API needs of it without knowing the kind.
type statusObject[T any] interface {
	*T
	metav1.Object
	runtime.Object
	DeepCopy() *T
}

// fakeKind is what differs between the status kinds the fake API serves; the
// writer under test is generic over the kind, so its fake is too.
type fakeKind[T any, P statusObject[T]] struct {
	name     string // ServiceBGPStatus; its List is name+"List"
	resource string // servicebgpstatuses
	// list is the kind's List of items; its TypeMeta is set by the caller.
	list func(meta metav1.ListMeta, items []T) runtime.Object
	// setStatus sets to's status to from's: the status subresource writes
	// only the status, and create ignores it.
	setStatus func(to, from P)
	// subresource: the kind's CRD as ecmplb ships it has a status subresource.
	subresource bool
}

var bgpFake = fakeKind[v1beta1.ServiceBGPStatus, *v1beta1.ServiceBGPStatus]{
	name: "ServiceBGPStatus", resource: "servicebgpstatuses",
	list: func(meta metav1.ListMeta, items []v1beta1.ServiceBGPStatus) runtime.Object {
		return &v1beta1.ServiceBGPStatusList{ListMeta: meta, Items: items}
	},
	setStatus: func(to, from *v1beta1.ServiceBGPStatus) { to.Status = from.Status },
}

var l2Fake = fakeKind[v1beta1.ServiceL2Status, *v1beta1.ServiceL2Status]{
	name: "ServiceL2Status", resource: "servicel2statuses",
	list: func(meta metav1.ListMeta, items []v1beta1.ServiceL2Status) runtime.Object {
		return &v1beta1.ServiceL2StatusList{ListMeta: meta, Items: items}
	},
	setStatus:   func(to, from *v1beta1.ServiceL2Status) { to.Status = from.Status },
	subresource: true,
}

// fakeAPI and l2API are the fake API of each kind.
type (
	fakeAPI = statusAPI[v1beta1.ServiceBGPStatus, *v1beta1.ServiceBGPStatus]
	l2API   = statusAPI[v1beta1.ServiceL2Status, *v1beta1.ServiceL2Status]
)

func newFakeAPI(t *testing.T, ns string) (*fakeAPI, rest.Interface) {
	return newStatusAPI(t, ns, bgpFake)
}

func newL2API(t *testing.T) (*l2API, rest.Interface) {
	return newStatusAPI(t, "metallb-system", l2Fake)
}

// statusAPI is an in-memory API server for the objects of one status kind in
// one namespace, as kube-apiserver serves a CRD. With a status subresource:
// create ignores status, PUT .../status changes only status and checks
// resourceVersion, PATCH .../status applies a JSON merge patch to the status
// only, and a PATCH of the object changes all but the status. Without one:
// create and PATCH of the object take the status, and .../status is not
// found (answered as a missing object is). It fails requests on demand, to
// test retries.
type statusAPI[T any, P statusObject[T]] struct {
	t    *testing.T
	ns   string
	kind fakeKind[T, P]
	sub  bool // the CRD has a status subresource (default: the kind's)

	mu      sync.Mutex
	objs    map[string]P
	rv      int
	calls   map[string]int // by "VERB what", e.g. "PUT status"
	failFor map[string]int // the next n calls of "VERB what" fail with 500
	failAll int            // the next n calls of any kind fail with 500

	delay       time.Duration // each call takes at least this long (outside mu)
	inFlight    int
	maxInFlight int            // the most calls served at once
	busy        map[string]int // calls in flight by object name
}

func newStatusAPI[T any, P statusObject[T]](t *testing.T, ns string, k fakeKind[T, P]) (*statusAPI[T, P], rest.Interface) {
	f := &statusAPI[T, P]{t: t, ns: ns, kind: k, sub: k.subresource, objs: map[string]P{},
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

// setSubresource changes the CRD: with or without a status subresource.
func (f *statusAPI[T, P]) setSubresource(sub bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sub = sub
}

// fail makes the next n calls of op ("GET list", "GET one", "POST", "PATCH",
// "PUT status", "PATCH status", "DELETE") fail.
func (f *statusAPI[T, P]) fail(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failFor[op] = n
}

// failAny makes the next n calls of any kind fail.
func (f *statusAPI[T, P]) failAny(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAll = n
}

// counts returns the calls so far by operation, leaving out Lists.
func (f *statusAPI[T, P]) counts() map[string]int {
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

func (f *statusAPI[T, P]) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// put stores an object as if someone had created it and written its status.
func (f *statusAPI[T, P]) put(o P) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rv++
	o = o.DeepCopy()
	o.SetNamespace(f.ns)
	o.SetResourceVersion(strconv.Itoa(f.rv))
	f.objs[o.GetName()] = o
}

// remove deletes an object behind the writer's back.
func (f *statusAPI[T, P]) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objs, name)
}

// get returns a copy of an object.
func (f *statusAPI[T, P]) get(name string) (P, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objs[name]
	if !ok {
		return nil, false
	}
	return o.DeepCopy(), true
}

// names lists the stored objects' names, sorted.
func (f *statusAPI[T, P]) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.objs))
}

func (f *statusAPI[T, P]) String() string { return fmt.Sprint(f.names()) }

func (f *statusAPI[T, P]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	prefix := "/apis/metallb.io/v1beta1/namespaces/" + f.ns + "/" + f.kind.resource
	rest, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		f.t.Errorf("fake API: unexpected path %s %s", r.Method, r.URL.Path)
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "no such path")
		return
	}
	parts := strings.Split(strings.TrimPrefix(rest, "/"), "/")
	name, op := parts[0], r.Method
	switch {
	case r.Method == http.MethodGet && name == "":
		op = "GET list"
	case r.Method == http.MethodGet:
		op = "GET one"
	case len(parts) > 1:
		op += " " + parts[1]
	}
	defer f.enter(name)()
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
	f.serve(w, r, op, name)
}

// enter records a call in flight on object name ("" for a List), fails the
// test if another one is (the writer never works on one Service twice at
// once), waits out the delay and returns what ends the call.
func (f *statusAPI[T, P]) enter(name string) (leave func()) {
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	if name != "" {
		if f.busy == nil {
			f.busy = map[string]int{}
		}
		f.busy[name]++
		if f.busy[name] > 1 {
			f.t.Errorf("fake API: two calls on %s at once", name)
		}
	}
	delay := f.delay
	f.mu.Unlock()
	time.Sleep(delay)
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.inFlight--
		if name != "" {
			f.busy[name]--
		}
	}
}

// serve answers one call that does not fail; f.mu is held.
func (f *statusAPI[T, P]) serve(w http.ResponseWriter, r *http.Request, op, name string) {
	switch op {
	case "GET list":
		f.list(w, r)
	case "GET one":
		o, ok := f.objs[name]
		if !ok {
			f.notFound(w, name)
			return
		}
		f.writeObject(w, http.StatusOK, o)
	case "POST":
		f.create(w, r)
	case "PUT status", "PATCH status":
		if !f.sub {
			// kube-apiserver's answer: as for a missing object.
			f.notFound(w, name)
			return
		}
		if op == "PUT status" {
			f.putStatus(w, r, name)
		} else {
			f.patch(w, r, name, true)
		}
	case "PATCH":
		f.patch(w, r, name, false)
	case "DELETE":
		if _, ok := f.objs[name]; !ok {
			f.notFound(w, name)
			return
		}
		delete(f.objs, name)
		writeStatus(w, http.StatusOK, "", "deleted")
	default:
		f.t.Errorf("fake API: unexpected call %s %s", r.Method, r.URL.Path)
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, op)
	}
}

func (f *statusAPI[T, P]) list(w http.ResponseWriter, r *http.Request) {
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	var items []T
	for _, o := range f.objs {
		if sel.Matches(labels.Set(o.GetLabels())) {
			items = append(items, *o)
		}
	}
	list := f.kind.list(metav1.ListMeta{ResourceVersion: strconv.Itoa(f.rv)}, items)
	list.GetObjectKind().SetGroupVersionKind(v1beta1.GroupVersion.WithKind(f.kind.name + "List"))
	writeJSON(w, http.StatusOK, list)
}

// create stores a new object without its status. An object of another
// kind (or none) in the body is refused, as the API server does.
func (f *statusAPI[T, P]) create(w http.ResponseWriter, r *http.Request) {
	o := P(new(T))
	if !readJSON(w, r, o) {
		return
	}
	if k := o.GetObjectKind().GroupVersionKind().Kind; k != f.kind.name {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "kind "+k)
		return
	}
	if _, ok := f.objs[o.GetName()]; ok {
		writeStatus(w, http.StatusConflict, metav1.StatusReasonAlreadyExists, o.GetName()+" exists")
		return
	}
	f.rv++
	o.SetNamespace(f.ns)
	o.SetResourceVersion(strconv.Itoa(f.rv))
	if f.sub {
		f.kind.setStatus(o, new(T))
	}
	f.objs[o.GetName()] = o
	f.writeObject(w, http.StatusCreated, o)
}

func (f *statusAPI[T, P]) putStatus(w http.ResponseWriter, r *http.Request, name string) {
	o := P(new(T))
	if !readJSON(w, r, o) {
		return
	}
	cur, ok := f.objs[name]
	if !ok {
		f.notFound(w, name)
		return
	}
	if o.GetResourceVersion() != cur.GetResourceVersion() {
		writeStatus(w, http.StatusConflict, metav1.StatusReasonConflict, name+" was modified")
		return
	}
	f.setStatus(w, cur, o)
}

// patch applies a JSON merge patch: through the status subresource (status
// only) or to the object (all of it, but the status when the CRD has a
// status subresource).
func (f *statusAPI[T, P]) patch(w http.ResponseWriter, r *http.Request, name string, status bool) {
	if ct := r.Header.Get("Content-Type"); ct != "application/merge-patch+json" {
		writeStatus(w, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType, ct)
		return
	}
	cur, ok := f.objs[name]
	if !ok {
		f.notFound(w, name)
		return
	}
	patch, err := io.ReadAll(r.Body)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	doc, _ := json.Marshal(cur)
	merged, err := jsonpatch.MergePatch(doc, patch)
	next := P(new(T))
	if err == nil {
		err = json.Unmarshal(merged, next)
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	if status {
		f.setStatus(w, cur, next)
		return
	}
	if f.sub {
		f.kind.setStatus(next, cur)
	}
	f.rv++
	next.SetResourceVersion(strconv.Itoa(f.rv))
	f.objs[name] = next
	f.writeObject(w, http.StatusOK, next)
}

// setStatus writes from's status into the stored object cur: the status
// subresource changes only the status.
func (f *statusAPI[T, P]) setStatus(w http.ResponseWriter, cur, from P) {
	f.rv++
	f.kind.setStatus(cur, from)
	cur.SetResourceVersion(strconv.Itoa(f.rv))
	f.writeObject(w, http.StatusOK, cur)
}

// writeObject answers with o, its kind set as the API server's answers
// carry it.
func (f *statusAPI[T, P]) writeObject(w http.ResponseWriter, code int, o P) {
	o.GetObjectKind().SetGroupVersionKind(v1beta1.GroupVersion.WithKind(f.kind.name))
	writeJSON(w, code, o)
}

// notFound answers that the object name does not exist, as kube-apiserver
// does.
func (f *statusAPI[T, P]) notFound(w http.ResponseWriter, name string) {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: metav1.StatusFailure,
		Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: f.kind.resource + ".metallb.io \"" + name + "\" not found",
		Details: &metav1.StatusDetails{Name: name, Group: "metallb.io", Kind: f.kind.resource}}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_ = json.NewEncoder(w).Encode(&st)
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
