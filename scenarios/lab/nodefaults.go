package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/internal/proc"
)

// labSlices selects the EndpointSlices the lab writes (its pods).
const labSlices = discoveryv1.LabelManagedBy + "=lab.ecmplb.io"

// FreezeNode freezes a whole node: every process in its network namespace
// (the speaker; the lab runs nothing else there) stops with SIGSTOP while
// the namespace's kernel still answers. It returns once they are stopped,
// with the time the freeze took effect.
func (l *Lab) FreezeNode(ctx context.Context, node string) (time.Time, error) {
	l.mark(&l.frozenNodes, node, true)
	n := len(l.Fabric.FaultLog())
	start := time.Now()
	if err := l.Fabric.Fault(ctx, fabric.Fault{Kind: fabric.FaultNodeFreeze, Target: node}); err != nil {
		return start, fmt.Errorf("lab: freeze %s: %w", node, err)
	}
	if log := l.Fabric.FaultLog(); len(log) > n {
		return log[n].At, nil
	}
	return start, nil
}

// ThawNode resumes what FreezeNode stopped (SIGCONT) and returns when.
func (l *Lab) ThawNode(ctx context.Context, node string) (time.Time, error) {
	at := time.Now()
	if err := l.Fabric.Repair(ctx, fabric.Fault{Kind: fabric.FaultNodeFreeze, Target: node}); err != nil {
		return at, fmt.Errorf("lab: thaw %s: %w", node, err)
	}
	l.mark(&l.frozenNodes, node, false)
	return at, nil
}

// DrainNode drains a node the way the lab plays pods: it cordons the Node
// object and removes the node's endpoints from every EndpointSlice the lab
// wrote, as evicting the pods would (the speakers are the lab's processes,
// not pods, and stay). It returns when the drain started.
func (l *Lab) DrainNode(ctx context.Context, node string) (time.Time, error) {
	at := time.Now()
	if err := l.setUnschedulable(ctx, node, true); err != nil {
		return at, err
	}
	api := l.Kube.DiscoveryV1().EndpointSlices(metav1.NamespaceAll)
	list, err := api.List(ctx, metav1.ListOptions{LabelSelector: labSlices})
	if err != nil {
		return at, fmt.Errorf("lab: drain %s: %w", node, err)
	}
	var errs []error
	for i := range list.Items {
		s := &list.Items[i]
		n := len(s.Endpoints)
		s.Endpoints = slices.DeleteFunc(s.Endpoints, func(e discoveryv1.Endpoint) bool { return ptr.Deref(e.NodeName, "") == node })
		if len(s.Endpoints) == n {
			continue
		}
		if _, err := l.Kube.DiscoveryV1().EndpointSlices(s.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("lab: drain %s: EndpointSlice %s/%s: %w", node, s.Namespace, s.Name, err))
		}
	}
	return at, errors.Join(errs...)
}

// UncordonNode makes a drained node schedulable again; the endpoints the
// drain removed do not come back by themselves.
func (l *Lab) UncordonNode(ctx context.Context, node string) (time.Time, error) {
	at := time.Now()
	return at, l.setUnschedulable(ctx, node, false)
}

func (l *Lab) setUnschedulable(ctx context.Context, node string, on bool) error {
	api := l.Kube.CoreV1().Nodes()
	n, err := api.Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("lab: Node %s: %w", node, err)
	}
	n.Spec.Unschedulable = on
	if _, err := api.Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("lab: Node %s: unschedulable=%v: %w", node, on, err)
	}
	return nil
}

// mark records (or forgets) a node in one of the sets of faults Down undoes.
func (l *Lab) mark(set *map[string]bool, node string, on bool) {
	l.faultMu.Lock()
	defer l.faultMu.Unlock()
	if *set == nil {
		*set = map[string]bool{}
	}
	if on {
		(*set)[node] = true
	} else {
		delete(*set, node)
	}
}

// thawAll resumes every frozen speaker and node, so that Down's graceful
// stops reach them (a stopped process takes no SIGTERM). The Node objects
// go with the apiserver: nothing to uncordon.
func (l *Lab) thawAll() {
	l.faultMu.Lock()
	speakers, nodes := l.frozenSpeakers, l.frozenNodes
	l.frozenSpeakers, l.frozenNodes = nil, nil
	l.faultMu.Unlock()
	for n := range speakers {
		if pid := l.SpeakerPID(n); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	if l.Fabric == nil {
		return
	}
	for n := range nodes {
		if ns := l.Fabric.NodeNetNS(n); ns != "" {
			_, _ = proc.SignalInNetNS(ns, syscall.SIGCONT)
		}
	}
}
