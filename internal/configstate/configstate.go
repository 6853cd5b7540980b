// Package configstate writes ConfigurationState objects (metallb.io), the
// status MetalLB users check to see whether a component's configuration
// loaded and, if not, which object was rejected and why: "controller" for the
// controller, "speaker-<node>" for each speaker. Status computes the status
// from the rejected objects (pure); Writer converges the object to it.
package configstate

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// Condition types and reasons, as MetalLB names them.
const (
	// CondController is the controller's condition (its pool reconciler).
	CondController = "poolReconcilerValid"
	// CondSpeaker is a speaker's condition (its configuration reconciler).
	CondSpeaker = "configReconcilerValid"
	// ReasonReconciled: the configuration loaded.
	ReasonReconciled = "Reconciled"
	// ReasonConfigurationError: some object was rejected.
	ReasonConfigurationError = "ConfigurationError"
)

// Object says which ConfigurationState a component writes.
type Object struct {
	Name      string
	Labels    map[string]string
	Condition string
	// Owner, if set, is the object's ownerReference, so the garbage
	// collector deletes it with what it describes (see NodeOwner and
	// DeploymentOwner). It is set when the object is created; one created
	// without it keeps none (the components may only create and write the
	// status of their object, not edit its metadata).
	Owner *metav1.OwnerReference
	// ResolveOwner, if set, gives Owner when the object is to be created,
	// and only then: the owner (a Node, a Deployment) is read once per
	// object's lifetime and not at all while the object exists. An error
	// fails the pass, retried with backoff, so the object is never created
	// without the owner it should have.
	ResolveOwner func(ctx context.Context) (*metav1.OwnerReference, error)
}

// NodeOwner makes a speaker's object owned by its Node: it describes the
// speaker on that node, so it goes when the Node leaves the cluster, and
// survives the restarts of the speaker's pod (a pod owner would delete and
// re-create it on every restart; the DaemonSet would keep objects of nodes
// long gone). A namespaced object may have a cluster-scoped owner. No
// blockOwnerDeletion: that would need update on nodes/finalizers, and
// nothing waits on this object's deletion.
func NodeOwner(name string, uid types.UID) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: name, UID: uid}
}

// DeploymentOwner makes the controller's object owned by the controller's
// Deployment: uninstalling ecmplb deletes it, while replicas coming and
// going (pods, ReplicaSets of a rollout) leave it in place. Reading the
// Deployment's UID takes get on that one Deployment (resourceNames); no
// blockOwnerDeletion, for the same reason as NodeOwner.
func DeploymentOwner(name string, uid types.UID) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name, UID: uid}
}

// Controller is the controller's object.
func Controller() Object {
	return Object{Name: "controller", Labels: map[string]string{v1beta1.LabelComponentType: "controller"}, Condition: CondController}
}

// Speaker is the object of the speaker on node.
func Speaker(node string) Object {
	return Object{Name: "speaker-" + node, Condition: CondSpeaker,
		Labels: map[string]string{v1beta1.LabelComponentType: "speaker", v1beta1.LabelNodeName: node}}
}

// Status is the status for the given problems (one line per rejected object,
// naming it and the field): Valid without any, else Invalid with them
// sorted in ErrorSummary and in the condition's message. prev are the
// conditions the object holds, so an unchanged verdict keeps its transition
// time.
func Status(condType string, problems []string, prev []metav1.Condition, now time.Time) v1beta1.ConfigurationStateStatus {
	lines := slices.Clone(problems)
	slices.Sort(lines)
	lines = slices.Compact(lines)
	st := v1beta1.ConfigurationStateStatus{Result: v1beta1.ConfigurationValid,
		Conditions: slices.Clone(prev)}
	c := metav1.Condition{Type: condType, Status: metav1.ConditionTrue, Reason: ReasonReconciled,
		Message: "every object of the configuration is accepted", LastTransitionTime: metav1.NewTime(now)}
	if len(lines) > 0 {
		st.Result = v1beta1.ConfigurationInvalid
		st.ErrorSummary = strings.Join(lines, "\n")
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonConfigurationError, st.ErrorSummary
	}
	meta.SetStatusCondition(&st.Conditions, c)
	return st
}

// Equal tells whether two statuses say the same (transition times included).
func Equal(a, b v1beta1.ConfigurationStateStatus) bool { return equality.Semantic.DeepEqual(a, b) }

// API is the apiserver as the Writer uses it, for one namespace.
type API interface {
	Get(ctx context.Context, name string) (*v1beta1.ConfigurationState, error)
	Create(ctx context.Context, o *v1beta1.ConfigurationState) (*v1beta1.ConfigurationState, error)
	UpdateStatus(ctx context.Context, o *v1beta1.ConfigurationState) error
}

type options struct {
	minBackoff, maxBackoff time.Duration
	resync                 time.Duration
	now                    func() time.Time
	log                    *slog.Logger
}

// Option configures a Writer.
type Option func(*options)

// WithBackoff bounds the wait before retrying a failed write (default 100 ms to 30 s).
func WithBackoff(min, max time.Duration) Option {
	return func(o *options) { o.minBackoff, o.maxBackoff = min, max }
}

// WithResync sets how often the object is read back and repaired (default 5 min:
// one GET per speaker; 1,000 nodes cost about 3 GETs/s cluster-wide).
func WithResync(d time.Duration) Option { return func(o *options) { o.resync = d } }

// WithClock sets the clock for condition transition times.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Writer keeps one ConfigurationState in line with the latest verdict given
// to Set. It is level-triggered: each pass reads the object back and writes
// only what differs; a failed pass is retried with backoff, and a resync
// repairs an object changed or deleted by someone else.
type Writer struct {
	api  API
	obj  Object
	o    options
	wake chan struct{}

	mu       sync.Mutex
	problems []string
	set      bool // Set was called: there is a verdict to write
}

// NewWriter returns a Writer for obj; Run drives it.
func NewWriter(api API, obj Object, opts ...Option) *Writer {
	o := options{minBackoff: 100 * time.Millisecond, maxBackoff: 30 * time.Second, resync: 5 * time.Minute,
		now: time.Now, log: slog.Default()}
	for _, f := range opts {
		f(&o)
	}
	return &Writer{api: api, obj: obj, o: o, wake: make(chan struct{}, 1)}
}

// Set records the newest verdict: the rejected objects, one line each
// (none: the configuration loaded).
func (w *Writer) Set(problems []string) {
	w.mu.Lock()
	w.problems, w.set = slices.Clone(problems), true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run converges until ctx ends.
func (w *Writer) Run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		wait := w.o.resync
		if err := w.converge(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, w.o.minBackoff), w.o.maxBackoff)
			wait = backoff
			w.o.log.Warn("ConfigurationState not written; retrying", "name", w.obj.Name, "in", backoff, "err", err)
		} else {
			backoff = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// converge makes the object hold the status of the latest verdict.
func (w *Writer) converge(ctx context.Context) error {
	w.mu.Lock()
	problems, set := w.problems, w.set
	w.mu.Unlock()
	if !set {
		return nil
	}
	cur, err := w.api.Get(ctx, w.obj.Name)
	if apierrors.IsNotFound(err) {
		obj := &v1beta1.ConfigurationState{ObjectMeta: metav1.ObjectMeta{Name: w.obj.Name, Labels: w.obj.Labels}}
		owner := w.obj.Owner
		if w.obj.ResolveOwner != nil {
			if owner, err = w.obj.ResolveOwner(ctx); err != nil {
				return fmt.Errorf("ConfigurationState %s owner: %w", w.obj.Name, err)
			}
		}
		if owner != nil {
			obj.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		cur, err = w.api.Create(ctx, obj)
	}
	if err != nil {
		return fmt.Errorf("ConfigurationState %s: %w", w.obj.Name, err)
	}
	st := Status(w.obj.Condition, problems, cur.Status.Conditions, w.o.now())
	if Equal(st, cur.Status) {
		return nil
	}
	cur.Status = st
	if err := w.api.UpdateStatus(ctx, cur); err != nil {
		return fmt.Errorf("ConfigurationState %s status: %w", w.obj.Name, err)
	}
	return nil
}
