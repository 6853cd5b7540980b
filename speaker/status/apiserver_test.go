package status

import (
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/internal/scheme"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

// callCounter counts a client's requests by "VERB subresource" as the fake
// API does ("POST", "PATCH", "PATCH status", "DELETE"), leaving out reads.
type callCounter struct {
	rt    http.RoundTripper
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet {
		op := r.Method
		if strings.HasSuffix(r.URL.Path, "/status") {
			op += " status"
		}
		c.mu.Lock()
		c.calls[op]++
		c.mu.Unlock()
	}
	return c.rt.RoundTrip(r)
}

func (c *callCounter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// The writer against a real kube-apiserver, with ecmplb's ServiceBGPStatus
// CRD (no status subresource) and with one that has a status subresource, as
// MetalLB's: what the fake API assumes of both holds (a create keeps or drops
// the status, a patch of the object takes it or leaves it, a status patch
// without the subresource is not found as a missing object is), and each
// write costs the calls TestCallsPerWrite counts.
func TestWriterAgainstTheAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(root, "deploy", "crds")
	// MetalLB's shape: the same CRDs, the ServiceBGPStatus one with a status
	// subresource.
	metallb := t.TempDir()
	entries, err := os.ReadDir(ours)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(ours, e.Name()))
		if e.Name() == "metallb.io_servicebgpstatuses.yaml" {
			b, err = testenv.MetalLBServiceBGPStatusCRD()
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(metallb, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	type counts = map[string]int
	for _, crd := range []struct {
		name, dir string
		want      []counts // after: a new object, a change, a re-creation, a change after the CRD was swapped
	}{
		{"ecmplb's CRD", ours, []counts{{"POST": 1}, {"POST": 1, "PATCH": 1}, {"POST": 2, "PATCH": 2, "DELETE": 1},
			{"POST": 2, "PATCH": 3, "PATCH status": 1, "DELETE": 1}}},
		{"MetalLB's CRD", metallb, []counts{{"POST": 1, "PATCH status": 1}, {"POST": 1, "PATCH status": 2},
			{"POST": 2, "PATCH status": 4, "PATCH": 1, "DELETE": 1}, {"POST": 2, "PATCH status": 5, "PATCH": 2, "DELETE": 1}}},
	} {
		t.Run(crd.name, func(t *testing.T) {
			env := testenv.Start(t, testenv.Options{CRDDir: crd.dir})
			cfg := rest.CopyConfig(env.Config)
			gv := v1beta1.GroupVersion
			cfg.GroupVersion, cfg.APIPath, cfg.ContentType = &gv, "/apis", runtime.ContentTypeJSON
			cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme.Scheme).WithoutConversion()
			cc := &callCounter{calls: map[string]int{}}
			cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { cc.rt = rt; return cc }
			c, err := rest.RESTClientFor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var src source
			w := newTestWriter(c, "node1", &src)
			startWriter(t, w)
			name := ObjectName("node1", "default/web")
			apiHolds := func(st Status) bool {
				var o v1beta1.ServiceBGPStatus
				if err := c.Get().Namespace("metallb-system").Resource("servicebgpstatuses").Name(name).Do(context.Background()).Into(&o); err != nil {
					return false
				}
				s := o.Status
				return s.Node == "node1" && s.ServiceNamespace == "default" && s.ServiceName == "web" &&
					slices.Equal(s.Peers, st.Peers) && slices.Equal(s.Prefixes, st.Prefixes) && slices.Equal(s.EstablishedPeers, st.EstablishedPeers)
			}
			step := func(what string, st Status, want counts) {
				t.Helper()
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("calls %v, want %v after %s", cc.counts(), want, what)
					}
				})
				eventually(t, what, func() bool { return apiHolds(st) && maps.Equal(cc.counts(), want) })
			}
			src.set("default/web", webStatus)
			w.Changed("default/web")
			step("a new object", webStatus, crd.want[0])
			next := webStatus
			next.EstablishedPeers = []string{"tor1", "tor2"}
			src.set("default/web", next)
			w.Changed("default/web")
			step("a change", next, crd.want[1])
			// Deleted behind the writer's back: the next change recreates it.
			if err := c.Delete().Namespace("metallb-system").Resource("servicebgpstatuses").Name(name).Do(context.Background()).Error(); err != nil {
				t.Fatal(err)
			}
			src.set("default/web", webStatus)
			w.Changed("default/web")
			step("a re-creation", webStatus, crd.want[2])
			// The writer believes the other CRD (as after one was swapped for
			// the other): one extra call tells it.
			w.useSubresource(!w.sub.Load())
			src.set("default/web", next)
			w.Changed("default/web")
			step("a change after the CRD was swapped", next, crd.want[3])
		})
	}
}
