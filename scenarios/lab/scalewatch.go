package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

// scaleWatch follows, as they happen, every ToR's RIB changes (long polls of
// the routers' history) and the Services' EXTERNAL-IPs (an informer), and
// wakes its reader on each: convergence is judged on events, and its time is
// the routers' own timestamp of the change that completed the last set.
type scaleWatch struct {
	l       *Lab
	pool    netip.Prefix
	wake    chan struct{}
	mu      sync.Mutex
	tors    map[string]*torRIB
	errs    map[string]error // the last error of each ToR's follower
	reloads int              // full RIB reads after a history gap
	svcs    cache.Store
	hops    map[string]string // Service → its expected next-hops, joined (under mu)
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

// startScaleWatch starts following the ToRs from their current RIB and the
// Services of namespace default; Close stops it.
func (l *Lab) startScaleWatch(ctx context.Context, pool netip.Prefix) (*scaleWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &scaleWatch{l: l, pool: pool, wake: make(chan struct{}, 1), tors: map[string]*torRIB{}, errs: map[string]error{}, stop: cancel}
	for _, tor := range l.Fabric.Topology().ToRs {
		t := newTorRIB()
		if err := w.reload(ctx, tor.Name, t); err != nil {
			cancel()
			return nil, err
		}
		w.tors[tor.Name] = t
		w.wg.Add(1)
		go w.follow(ctx, tor.Name, t.seq)
	}
	f := informers.NewSharedInformerFactoryWithOptions(l.Kube, 0, informers.WithNamespace("default"))
	inf := f.Core().V1().Services().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(any, any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}); err != nil {
		cancel()
		return nil, err
	}
	w.svcs = inf.GetStore()
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		w.Close()
		return nil, fmt.Errorf("Service informer did not sync: %w", ctx.Err())
	}
	return w, nil
}

func (w *scaleWatch) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// reload reads a ToR's whole RIB: the sequence number first, so that no
// change after the read is missed (one replayed twice is harmless).
func (w *scaleWatch) reload(ctx context.Context, tor string, t *torRIB) error {
	sum, err := w.l.Fabric.Summary(ctx, tor)
	if err != nil {
		return fmt.Errorf("tor %s: %w", tor, err)
	}
	sets, err := w.l.Fabric.RIB(ctx, tor)
	if err != nil {
		return fmt.Errorf("tor %s: %w", tor, err)
	}
	t.load(sum.LastSeq, sets)
	return nil
}

// follow long-polls a ToR's RIB history and applies each batch of changes.
func (w *scaleWatch) follow(ctx context.Context, tor string, seq uint64) {
	defer w.wg.Done()
	for ctx.Err() == nil {
		changes, err := w.l.Fabric.WaitHistory(ctx, tor, seq, 10*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.errs[tor] = err
			w.mu.Unlock()
			select { // a router that does not answer is retried; the wait reports it
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		w.mu.Lock()
		delete(w.errs, tor)
		t := w.tors[tor]
		if err := t.apply(changes); err != nil {
			w.reloads++
			err = w.reload(ctx, tor, t)
			if err != nil {
				w.errs[tor] = err
			}
		}
		seq = t.seq
		w.mu.Unlock()
		if len(changes) > 0 {
			w.poke()
		}
	}
}

// Close stops the followers and the informer.
func (w *scaleWatch) Close() {
	w.stop()
	w.wg.Wait()
}

// state returns the Services' addresses (name → IP; those without an
// EXTERNAL-IP are counted) and the ToRs' verdict against want (Service → the
// nodes that announce it; it must not change between calls).
func (w *scaleWatch) state(want map[string][]string) (ips map[string]netip.Addr, pending int, v scaleVerdict, err error) {
	ips = make(map[string]netip.Addr, len(want))
	for _, o := range w.svcs.List() {
		s := o.(*corev1.Service)
		if _, ok := want[s.Name]; !ok {
			continue
		}
		for _, in := range s.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(in.IP); err == nil {
				ips[s.Name] = a
				break
			}
		}
	}
	pending = len(want) - len(ips)
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for tor, err := range w.errs {
		errs = append(errs, fmt.Errorf("tor %s: %w", tor, err))
	}
	err = errors.Join(errs...)
	if pending > 0 {
		return ips, pending, scaleVerdict{}, err
	}
	if w.hops == nil {
		w.hops = map[string]string{}
	}
	expect := make(map[netip.Prefix]string, len(ips))
	for name, ip := range ips {
		h, ok := w.hops[name]
		if !ok {
			h = backend.JoinAddrs(backend.Sorted(w.l.Fabric.NodeAddrs(want[name]...)))
			w.hops[name] = h
		}
		expect[hostRoute(ip)] = h
	}
	return ips, 0, judge(expect, w.tors, w.pool), err
}

// wait returns when every ToR holds every expected set, re-judging on each
// RIB change or Service update; it fails when a lab process dies or timeout
// passes.
func (w *scaleWatch) wait(ctx context.Context, want map[string][]string, timeout time.Duration) (map[string]netip.Addr, scaleVerdict, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	alive := time.NewTicker(2 * time.Second)
	defer alive.Stop()
	var why string
	for {
		// Judging reads every set of every ToR: at most every 20 ms, so the
		// check does not take a core from the lab it measures. The figure is
		// the routers' timestamp, not when the check ran.
		next := time.After(20 * time.Millisecond)
		ips, pending, v, err := w.state(want)
		switch {
		case pending > 0:
			why = fmt.Sprintf("%d Services without an EXTERNAL-IP", pending)
		case v.Done:
			return ips, v, nil
		default:
			why = fmt.Sprintf("%d (ToR, prefix) sets differ, e.g. %s", v.Wrong, v.Example)
		}
		if err != nil {
			why += fmt.Sprintf(" (reading the ToRs: %v)", err)
		}
		select {
		case <-w.wake:
		case <-alive.C:
			if err := w.l.CheckAlive(); err != nil {
				return nil, scaleVerdict{}, err
			}
		case <-deadline.C:
			return nil, scaleVerdict{}, fmt.Errorf("not converged after %s: %s", timeout, why)
		case <-ctx.Done():
			return nil, scaleVerdict{}, ctx.Err()
		}
		<-next
	}
}
