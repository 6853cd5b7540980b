package status

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// L2Writer writes this node's ServiceL2Status objects: one per Service this
// node answers ARP/NDP for in layer 2 mode, existing exactly while it does,
// named ObjectName(node, key) and labelled as the ServiceBGPStatus objects
// are (metallb.io/node, metallb.io/service-name, metallb.io/service-namespace).
// The layer 2 runtime says what holds with SetL2; the writer converges the
// API server to it as K8s does (asynchronous, coalesced per Service, a few
// workers, retries with backoff, this node's stale objects deleted at
// start-up and the objects repaired every resync period). A node that
// creates the object of a Service also deletes the objects other nodes hold
// for it: a node that failed cannot delete its own, and the Service has one
// answering node.
//
// Give it WithStartAfter with a channel the runtime closes once it has made
// its first choice of the answering nodes and called SetL2 for the Services it
// answers for; otherwise the start-up cleanup deletes objects that are still
// true, and creates them again.
type L2Writer struct {
	w  *K8s
	mu sync.Mutex
	// want: the interfaces of each Service this node answers for (nil: all).
	want map[string][]string
}

// NewL2Writer returns a writer of ServiceL2Status objects in namespace for
// node; call Run to start it. It takes the options of NewK8s and shares its
// metric, ecmplb_speaker_status_write_errors_total.
func NewL2Writer(client rest.Interface, namespace, node string, log *slog.Logger, opts ...Option) *L2Writer {
	l := &L2Writer{want: map[string][]string{}}
	l.w = newWriter(l2Kind, client, namespace, node, l.source, log, opts...)
	return l
}

// SetL2 records whether this node answers ARP/NDP for the Service key
// ("namespace/name"), and on which interfaces (empty: all of them; the
// object then lists none, as MetalLB's). The object follows asynchronously;
// SetL2 never blocks on the API server. It is safe for concurrent use.
func (l *L2Writer) SetL2(key string, interfaces []string, announced bool) {
	l.mu.Lock()
	if announced {
		ifs := slices.Clone(interfaces)
		slices.Sort(ifs)
		l.want[key] = slices.Compact(ifs)
	} else {
		delete(l.want, key)
	}
	l.mu.Unlock()
	l.w.Changed(key)
}

// Run lists this node's objects (deleting stale ones) and writes until ctx
// ends.
func (l *L2Writer) Run(ctx context.Context) { l.w.Run(ctx) }

func (l *L2Writer) source(key string) (Status, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ifs, ok := l.want[key]
	return Status{Interfaces: ifs}, ok
}

var l2Kind = kind{
	name: "ServiceL2Status", resource: "servicel2statuses", exclusive: true, subresource: true,
	items: func(r rest.Result) ([]item, error) {
		var list v1beta1.ServiceL2StatusList
		if err := r.Into(&list); err != nil {
			return nil, err
		}
		out := make([]item, 0, len(list.Items))
		for i := range list.Items {
			out = append(out, l2Item(&list.Items[i]))
		}
		return out, nil
	},
	one: func(r rest.Result) (item, error) {
		var o v1beta1.ServiceL2Status
		if err := r.Into(&o); err != nil {
			return item{}, err
		}
		return l2Item(&o), nil
	},
	object: func(m metav1.ObjectMeta, node, ns, svc string, st Status) runtime.Object {
		return &v1beta1.ServiceL2Status{TypeMeta: metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "ServiceL2Status"}, ObjectMeta: m,
			Status: v1beta1.MetalLBServiceL2Status{Node: node, ServiceName: svc, ServiceNamespace: ns, Interfaces: l2Interfaces(st)}}
	},
	patch: func(node, ns, svc string, st Status) any {
		var p l2Patch
		p.Status.Node, p.Status.ServiceName, p.Status.ServiceNamespace = node, svc, ns
		p.Status.Interfaces = l2Interfaces(st)
		return &p
	},
}

func l2Item(o *v1beta1.ServiceL2Status) item {
	var ifs []string
	for _, i := range o.Status.Interfaces {
		ifs = append(ifs, i.Name)
	}
	return item{name: o.Name, labels: o.Labels, node: o.Status.Node, ns: o.Status.ServiceNamespace,
		svc: o.Status.ServiceName, complete: o.Status.Node != "", st: Status{Interfaces: ifs}}
}

func l2Interfaces(st Status) []v1beta1.InterfaceInfo {
	var out []v1beta1.InterfaceInfo
	for _, n := range st.Interfaces {
		out = append(out, v1beta1.InterfaceInfo{Name: n})
	}
	return out
}

// l2Patch is the JSON merge patch of a ServiceL2Status's whole status; no
// interfaces are sent as null, which removes the list.
type l2Patch struct {
	Status struct {
		Node             string                  `json:"node"`
		ServiceName      string                  `json:"serviceName"`
		ServiceNamespace string                  `json:"serviceNamespace"`
		Interfaces       []v1beta1.InterfaceInfo `json:"interfaces"`
	} `json:"status"`
}
