// Package lease runs package liveness over coordination.k8s.io/v1 Leases:
// each speaker renews its own Lease (ecmplb-speaker-<node>) every period and
// watches everyone's with an informer. A renewal counts when it is received,
// on the receiver's clock; the Lease's renewTime is written for people only.
//
// One goroutine owns the liveness.Table: the informer's handlers and the
// renewer hand it time-stamped inputs, and it advances the table on every
// input and at the time the table names (View.Next), and passes every
// changed View on. The renewer is level-triggered: at every period it makes
// the Lease exist and carry a fresh renewal, reading it back after a
// conflict or creating it when missing; a failure is retried at the next
// period, and only a write the apiserver accepted is confirmed.
package lease

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/ecmplb/ecmplb/bfd"
	"github.com/ecmplb/ecmplb/speaker/l2/liveness"
)

// NamePrefix starts the name of every speaker's Lease; the node name follows.
const NamePrefix = "ecmplb-speaker-"

// Leases reads and writes the Leases of one namespace: a typed clientset's
// CoordinationV1().Leases(namespace), or NewREST's (no clientset linked).
type Leases interface {
	leaseClient
	List(ctx context.Context, opts metav1.ListOptions) (*coordv1.LeaseList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// Options configure Run.
type Options struct {
	// Leases are those of Namespace.
	Leases    Leases
	Namespace string
	// Node is this speaker's node name.
	Node string
	// Period is how often this speaker renews its Lease.
	Period time.Duration
	// Liveness holds the shared timings (Threshold a multiple of Period).
	Liveness liveness.Config
	// Clock defaults to the real one.
	Clock  bfd.Clock
	Logger *slog.Logger
	// OnView receives every changed view, from Run's goroutine; it must not
	// block for long.
	OnView func(liveness.View)
}

// input is one time-stamped event for the table.
type input struct {
	kind int // inKnown, inHeard, inForget, inConfirmed
	node string
	at   time.Time
}

const (
	inKnown = iota
	inHeard
	inForget
	inConfirmed
)

// Run renews this node's Lease and watches all of them until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Clock == nil {
		o.Clock = bfd.RealClock()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Period <= 0 || o.Period >= o.Liveness.Threshold {
		return fmt.Errorf("lease: period %v must be positive and below the threshold %v", o.Period, o.Liveness.Threshold)
	}
	table, err := liveness.New(o.Liveness, o.Node, o.Clock.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := make(chan input, 1024)
	send := func(i input) {
		select {
		case in <- i:
		case <-ctx.Done():
		}
	}

	leases := o.Leases
	inf := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return leases.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return leases.Watch(ctx, opts)
		},
	}, &coordv1.Lease{}, 0, cache.Indexers{})
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if node, ok := nodeOf(obj); ok {
				kind := inHeard
				if initial {
					kind = inKnown
				}
				send(input{kind: kind, node: node, at: o.Clock.Now()})
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			node, ok := nodeOf(newObj)
			old, _ := oldObj.(*coordv1.Lease)
			nl, _ := newObj.(*coordv1.Lease)
			// A relist hands over unchanged objects too: only a new
			// version is a renewal.
			if ok && old != nil && nl != nil && old.ResourceVersion != nl.ResourceVersion {
				send(input{kind: inHeard, node: node, at: o.Clock.Now()})
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if node, ok := nodeOf(obj); ok {
				send(input{kind: inForget, node: node})
			}
		},
	}); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // nothing of Run outlives it
	wg.Go(func() { inf.Run(ctx.Done()) })
	wg.Go(func() { renew(ctx, o, leases, func(sent time.Time) { send(input{kind: inConfirmed, at: sent}) }) })

	wake := make(chan struct{}, 1)
	timer := o.Clock.AfterFunc(0, func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	defer timer.Stop()
	var last liveness.View
	first := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case i := <-in:
			apply(table, i)
			for drained := false; !drained; { // take what queued up, then decide once
				select {
				case i := <-in:
					apply(table, i)
				default:
					drained = true
				}
			}
		case <-wake:
		}
		now := o.Clock.Now()
		v := table.Advance(now)
		if v.Jumped {
			o.Logger.Warn("liveness: this speaker paused or its clock stepped; ages kept from before", "node", o.Node)
		}
		if first || changed(last, v) {
			first = false
			last = v
			if o.OnView != nil {
				o.OnView(v)
			}
		}
		timer.Reset(v.Next.Sub(now))
	}
}

func apply(t *liveness.Table, i input) {
	switch i.kind {
	case inKnown:
		t.Known(i.node, i.at)
	case inHeard:
		t.Heard(i.node, i.at)
	case inForget:
		t.Forget(i.node)
	case inConfirmed:
		t.Confirmed(i.at)
	}
}

func changed(a, b liveness.View) bool {
	return a.Answer != b.Answer || !a.AnswerUntil.Equal(b.AnswerUntil) ||
		!slices.Equal(a.Alive, b.Alive) || !slices.Equal(a.Down, b.Down)
}

func nodeOf(obj any) (string, bool) {
	l, ok := obj.(*coordv1.Lease)
	if !ok || !strings.HasPrefix(l.Name, NamePrefix) || len(l.Name) == len(NamePrefix) {
		return "", false
	}
	return strings.TrimPrefix(l.Name, NamePrefix), true
}

// renew writes this node's Lease every period until ctx ends, calling
// confirmed with the time each accepted write was sent.
func renew(ctx context.Context, o Options, leases leaseClient, confirmed func(sent time.Time)) {
	tick := make(chan struct{}, 1)
	fire := func() {
		select {
		case tick <- struct{}{}:
		default:
		}
	}
	timer := o.Clock.AfterFunc(0, fire)
	defer timer.Stop()
	var cur *coordv1.Lease
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
		// The next attempt is due one period after this one started,
		// whatever this one takes.
		timer.Reset(o.Period)
		sent := o.Clock.Now()
		// A renewal answered later than the window it extends is useless.
		rctx, cancel := context.WithTimeout(ctx, o.Liveness.Threshold-o.Liveness.Margin)
		next, err := renewOnce(rctx, o, leases, cur, sent)
		cancel()
		if ctx.Err() != nil {
			return
		}
		cur = next
		if err != nil {
			if !failing {
				o.Logger.Warn("liveness: renewing this node's Lease failed; retrying every period", "node", o.Node, "err", err)
			}
			failing = true
			continue
		}
		if failing {
			o.Logger.Info("liveness: renewing this node's Lease works again", "node", o.Node)
		}
		failing = false
		confirmed(sent)
	}
}

// leaseClient is the part of the Leases client the renewer uses.
type leaseClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordv1.Lease, error)
	Create(ctx context.Context, l *coordv1.Lease, opts metav1.CreateOptions) (*coordv1.Lease, error)
	Update(ctx context.Context, l *coordv1.Lease, opts metav1.UpdateOptions) (*coordv1.Lease, error)
}

// renewOnce makes the Lease exist and carry a renewal sent at sent; it
// returns the Lease as last read (nil when unknown).
func renewOnce(ctx context.Context, o Options, leases leaseClient, cur *coordv1.Lease, sent time.Time) (*coordv1.Lease, error) {
	name := NamePrefix + o.Node
	if cur == nil {
		got, err := leases.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			l := &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: o.Namespace, Name: name}}
			stamp(l, o, sent)
			made, err := leases.Create(ctx, l, metav1.CreateOptions{})
			if err != nil {
				return nil, fmt.Errorf("creating Lease %s/%s: %w", o.Namespace, name, err)
			}
			return made, nil
		case err != nil:
			return nil, fmt.Errorf("reading Lease %s/%s: %w", o.Namespace, name, err)
		}
		cur = got
	}
	l := cur.DeepCopy()
	stamp(l, o, sent)
	out, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			cur = nil // read it again (or create it) next time
		}
		return cur, fmt.Errorf("renewing Lease %s/%s: %w", o.Namespace, name, err)
	}
	return out, nil
}

// stamp fills the Lease's fields for people and other tools: who holds it,
// when it was renewed (on this node's clock) and for how long it counts.
func stamp(l *coordv1.Lease, o Options, sent time.Time) {
	holder := o.Node
	secs := int32((o.Liveness.Threshold + time.Second - 1) / time.Second)
	mt := metav1.NewMicroTime(sent)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &holder, &secs, &mt
}
