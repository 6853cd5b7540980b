package configstate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestStatus(t *testing.T) {
	st := Status(CondSpeaker, nil, nil, t0)
	if st.Result != v1beta1.ConfigurationValid || st.ErrorSummary != "" {
		t.Fatalf("no problems: %+v", st)
	}
	c := meta.FindStatusCondition(st.Conditions, CondSpeaker)
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonReconciled || !c.LastTransitionTime.Time.Equal(t0) {
		t.Fatalf("condition %+v", c)
	}
	problems := []string{`IPAddressPool "b": spec.addresses[0]: bad`, `BGPPeer "a": spec.holdTime: 1s is below 3s`}
	bad := Status(CondSpeaker, problems, st.Conditions, t0.Add(time.Minute))
	if bad.Result != v1beta1.ConfigurationInvalid {
		t.Fatalf("result %s", bad.Result)
	}
	// Sorted, one per line: the order problems were found in does not matter.
	if want := "BGPPeer \"a\": spec.holdTime: 1s is below 3s\nIPAddressPool \"b\": spec.addresses[0]: bad"; bad.ErrorSummary != want {
		t.Fatalf("summary %q, want %q", bad.ErrorSummary, want)
	}
	c = meta.FindStatusCondition(bad.Conditions, CondSpeaker)
	if c.Status != metav1.ConditionFalse || c.Reason != ReasonConfigurationError || c.Message != bad.ErrorSummary ||
		!c.LastTransitionTime.Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("condition %+v", c)
	}
	// The same verdict later keeps its transition time (no write needed).
	again := Status(CondSpeaker, problems, bad.Conditions, t0.Add(time.Hour))
	if !Equal(again, bad) {
		t.Fatalf("same problems gave another status: %+v vs %+v", again, bad)
	}
}

// fakeAPI is an apiserver holding ConfigurationState objects, failing calls
// on demand.
type fakeAPI struct {
	mu      sync.Mutex
	objs    map[string]*v1beta1.ConfigurationState
	fail    int // the next fail calls fail
	writes  int
	changed chan struct{}
}

func newFakeAPI() *fakeAPI {
	return &fakeAPI{objs: map[string]*v1beta1.ConfigurationState{}, changed: make(chan struct{}, 100)}
}

var errDown = errors.New("apiserver unavailable")

func (f *fakeAPI) failing() bool {
	if f.fail > 0 {
		f.fail--
		return true
	}
	return false
}

func (f *fakeAPI) Get(_ context.Context, name string) (*v1beta1.ConfigurationState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing() {
		return nil, errDown
	}
	o := f.objs[name]
	if o == nil {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "metallb.io", Resource: "configurationstates"}, name)
	}
	return o.DeepCopy(), nil
}

func (f *fakeAPI) Create(_ context.Context, o *v1beta1.ConfigurationState) (*v1beta1.ConfigurationState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing() {
		return nil, errDown
	}
	c := o.DeepCopy()
	c.Status = v1beta1.ConfigurationStateStatus{} // the status subresource ignores it
	f.objs[o.Name] = c
	f.writes++
	return c.DeepCopy(), nil
}

func (f *fakeAPI) UpdateStatus(_ context.Context, o *v1beta1.ConfigurationState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing() {
		return errDown
	}
	cur := f.objs[o.Name]
	if cur == nil {
		return apierrors.NewNotFound(schema.GroupResource{Group: "metallb.io", Resource: "configurationstates"}, o.Name)
	}
	cur.Status = *o.Status.DeepCopy()
	f.writes++
	select {
	case f.changed <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakeAPI) get(name string) *v1beta1.ConfigurationState {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o := f.objs[name]; o != nil {
		return o.DeepCopy()
	}
	return nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// The writer converges the object to the latest verdict, creating it with
// MetalLB's labels, retrying failed calls, and recreating it if deleted.
func TestWriterConverges(t *testing.T) {
	api := newFakeAPI()
	api.fail = 3
	w := NewWriter(api, Speaker("node1"), WithBackoff(time.Millisecond, 5*time.Millisecond), WithResync(20*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	w.Set([]string{`BGPPeer "a": spec.holdTime: 1s is below 3s`})
	waitFor(t, "Invalid state after three failed calls", func() bool {
		o := api.get("speaker-node1")
		return o != nil && o.Status.Result == v1beta1.ConfigurationInvalid
	})
	o := api.get("speaker-node1")
	if o.Labels[v1beta1.LabelComponentType] != "speaker" || o.Labels[v1beta1.LabelNodeName] != "node1" {
		t.Fatalf("labels %v", o.Labels)
	}
	w.Set(nil)
	waitFor(t, "Valid state", func() bool { return api.get("speaker-node1").Status.Result == v1beta1.ConfigurationValid })

	// Deleted behind its back: the resync puts it back.
	api.mu.Lock()
	delete(api.objs, "speaker-node1")
	api.mu.Unlock()
	waitFor(t, "recreated object", func() bool {
		o := api.get("speaker-node1")
		return o != nil && o.Status.Result == v1beta1.ConfigurationValid
	})
	// In shape: resyncs cost reads, no writes.
	api.mu.Lock()
	before := api.writes
	api.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	api.mu.Lock()
	after := api.writes
	api.mu.Unlock()
	if after != before {
		t.Fatalf("%d writes while nothing changed", after-before)
	}
}

func TestNames(t *testing.T) {
	if c := Controller(); c.Name != "controller" || c.Labels[v1beta1.LabelComponentType] != "controller" || c.Condition != CondController {
		t.Fatalf("controller: %+v", c)
	}
	if s := Speaker("n1"); s.Name != "speaker-n1" || s.Labels[v1beta1.LabelNodeName] != "n1" || s.Condition != CondSpeaker {
		t.Fatalf("speaker: %+v", s)
	}
}

// The object is created with its owner, when there is one.
func TestWriterSetsOwner(t *testing.T) {
	for _, tc := range []struct {
		name  string
		owner *metav1.OwnerReference
	}{
		{"no owner", nil},
		{"node", NodeOwner("node1", "uid-1")},
		{"deployment", DeploymentOwner("ecmplb-controller", "uid-2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI()
			obj := Speaker("node1")
			obj.Owner = tc.owner
			w := NewWriter(api, obj, WithBackoff(time.Millisecond, 5*time.Millisecond))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			w.Set(nil)
			waitFor(t, "the object", func() bool { return api.get("speaker-node1") != nil })
			refs := api.get("speaker-node1").OwnerReferences
			switch {
			case tc.owner == nil && len(refs) != 0:
				t.Fatalf("owners %v, want none", refs)
			case tc.owner != nil && (len(refs) != 1 || refs[0] != *tc.owner):
				t.Fatalf("owners %v, want %v", refs, *tc.owner)
			}
			if tc.owner != nil && refs[0].BlockOwnerDeletion != nil {
				t.Fatal("blockOwnerDeletion set: it needs update on the owner's finalizers")
			}
		})
	}
}

// ResolveOwner is asked only when the object is to be created; while it
// fails, the object is not created (without its owner) but retried.
func TestWriterResolvesOwner(t *testing.T) {
	api := newFakeAPI()
	var mu sync.Mutex
	calls, failures := 0, 2
	obj := Controller()
	obj.ResolveOwner = func(context.Context) (*metav1.OwnerReference, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if failures > 0 {
			failures--
			if api.get("controller") != nil {
				t.Error("object created before its owner was known")
			}
			return nil, errDown
		}
		return DeploymentOwner("ecmplb-controller", "uid-3"), nil
	}
	w := NewWriter(api, obj, WithBackoff(time.Millisecond, 5*time.Millisecond), WithResync(time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	w.Set(nil)
	waitFor(t, "the object", func() bool { return api.get("controller") != nil })
	if refs := api.get("controller").OwnerReferences; len(refs) != 1 || refs[0] != *DeploymentOwner("ecmplb-controller", "uid-3") {
		t.Fatalf("owners %v", refs)
	}
	time.Sleep(50 * time.Millisecond) // resyncs read the object, not the owner
	mu.Lock()
	defer mu.Unlock()
	if calls != 3 {
		t.Fatalf("owner resolved %d times, want 3 (two failures, one creation)", calls)
	}
}
