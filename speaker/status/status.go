// Package status writes one ServiceBGPStatus object per announced Service and node,
// saying which peers carry the Service's routes. Writes are asynchronous, coalesced
// per Service and rate-limited by the client, so a burst of announcements never waits
// for the API server.
package status

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// Status is what is recorded for one Service on one node.
type Status struct {
	Peers            []string // BGPPeers the routes are announced to
	Prefixes         []string
	EstablishedPeers []string // of Peers, those with an established session
}

// Source returns the current status of a Service key ("namespace/name"); false
// means the Service is not announced from this node (its object is deleted).
type Source func(key string) (Status, bool)

// Writer is told which Services' status may have changed.
type Writer interface {
	// Changed marks one Service for a status write.
	Changed(key string)
	// ChangedAll marks every Service that has or had a status (session up/down).
	ChangedAll()
}

// K8s writes ServiceBGPStatus objects in a namespace.
type K8s struct {
	client    rest.Interface
	namespace string
	node      string
	source    Source
	log       *slog.Logger

	mu      sync.Mutex
	pending map[string]struct{}
	written map[string]Status // what the API server holds, by Service key
	signal  chan struct{}
}

// NewK8s returns a writer; call Run to start it.
func NewK8s(client rest.Interface, namespace, node string, source Source, log *slog.Logger) *K8s {
	return &K8s{client: client, namespace: namespace, node: node, source: source, log: log,
		pending: map[string]struct{}{}, written: map[string]Status{}, signal: make(chan struct{}, 1)}
}

// Changed implements Writer.
func (w *K8s) Changed(key string) {
	w.mu.Lock()
	w.pending[key] = struct{}{}
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// ChangedAll implements Writer.
func (w *K8s) ChangedAll() {
	w.mu.Lock()
	for k := range w.written {
		w.pending[k] = struct{}{}
	}
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// ObjectName is the deterministic name of the status object for a Service on a node.
func ObjectName(node, key string) string {
	name := node + "-" + strings.ReplaceAll(key, "/", "-")
	if len(name) <= 63 {
		return strings.ToLower(name)
	}
	h := sha256.Sum256([]byte(node + "/" + key))
	return strings.ToLower(name[:46]) + "-" + hex.EncodeToString(h[:8])
}

// Run loads the objects this node wrote before (so stale ones get deleted) and then
// writes until ctx ends.
func (w *K8s) Run(ctx context.Context) {
	var list v1beta1.ServiceBGPStatusList
	err := w.client.Get().Namespace(w.namespace).Resource("servicebgpstatuses").
		Param("labelSelector", v1beta1.LabelNode+"="+w.node).Do(ctx).Into(&list)
	if err != nil {
		w.log.Warn("listing ServiceBGPStatus objects", "err", err)
	}
	w.mu.Lock()
	for _, o := range list.Items {
		key := o.Status.ServiceNamespace + "/" + o.Status.ServiceName
		w.written[key] = Status{Peers: o.Status.Peers, Prefixes: o.Status.Prefixes, EstablishedPeers: o.Status.EstablishedPeers}
		w.pending[key] = struct{}{}
	}
	w.mu.Unlock()
	for {
		w.mu.Lock()
		var keys []string
		for k := range w.pending {
			keys = append(keys, k)
		}
		clear(w.pending)
		w.mu.Unlock()
		for _, k := range keys {
			if ctx.Err() != nil {
				return
			}
			if err := w.sync(ctx, k); err != nil {
				w.log.Warn("writing ServiceBGPStatus", "service", k, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-w.signal:
		}
	}
}

func (w *K8s) sync(ctx context.Context, key string) error {
	st, announced := w.source(key)
	w.mu.Lock()
	old, had := w.written[key]
	w.mu.Unlock()
	name := ObjectName(w.node, key)
	switch {
	case !announced && !had:
		return nil
	case !announced:
		err := w.client.Delete().Namespace(w.namespace).Resource("servicebgpstatuses").Name(name).Do(ctx).Error()
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		w.mu.Lock()
		delete(w.written, key)
		w.mu.Unlock()
		return nil
	case had && reflect.DeepEqual(old, st):
		return nil
	}
	ns, svc, _ := strings.Cut(key, "/")
	obj := &v1beta1.ServiceBGPStatus{
		TypeMeta: metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "ServiceBGPStatus"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.namespace, Labels: map[string]string{
			v1beta1.LabelNode: w.node, v1beta1.LabelServiceName: svc, v1beta1.LabelServiceNamespace: ns,
		}},
	}
	var cur v1beta1.ServiceBGPStatus
	err := w.client.Get().Namespace(w.namespace).Resource("servicebgpstatuses").Name(name).Do(ctx).Into(&cur)
	if apierrors.IsNotFound(err) {
		err = w.client.Post().Namespace(w.namespace).Resource("servicebgpstatuses").Body(obj).Do(ctx).Into(&cur)
	}
	if err != nil {
		return fmt.Errorf("get/create %s: %w", name, err)
	}
	cur.Status = v1beta1.ServiceBGPStatusStatus{Node: w.node, ServiceName: svc, ServiceNamespace: ns,
		Peers: st.Peers, Prefixes: st.Prefixes, EstablishedPeers: st.EstablishedPeers}
	if err := w.client.Put().Namespace(w.namespace).Resource("servicebgpstatuses").Name(name).SubResource("status").
		Body(&cur).Do(ctx).Error(); err != nil {
		return fmt.Errorf("update status %s: %w", name, err)
	}
	w.mu.Lock()
	w.written[key] = st
	w.mu.Unlock()
	return nil
}
