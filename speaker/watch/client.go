package watch

import (
	"fmt"

	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/scheme/lean"
)

// NewMetalLBClient returns a REST client for metallb.io/v1beta1; the
// speaker reads BGPPeers through it in v1beta2 (metalLBVersion).
func NewMetalLBClient(cfg *rest.Config) (rest.Interface, error) {
	c := rest.CopyConfig(cfg)
	gv := v1beta1.GroupVersion
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	c.ContentType = runtime.ContentTypeJSON
	c.NegotiatedSerializer = serializer.NewCodecFactory(lean.Scheme).WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("metallb.io client: %w", err)
	}
	return rc, nil
}

// NewListWatch lists and watches a metallb.io resource (plural name) of
// namespace through c (NewMetalLBClient), as the speaker does: BGPPeers in
// v1beta2, everything else in v1beta1.
func NewListWatch(c rest.Interface, resource, namespace string) cache.ListerWatcher {
	return cache.NewListWatchFromClient(metalLBVersion(c, resource), resource, namespace, fields.Everything())
}

// metalLBVersion returns the requests of c for resource in the version the
// speaker reads it in: BGPPeers in metallb.io/v1beta2, their storage version,
// so the apiserver serves them without calling the conversion webhook (the
// controller, which serves it, may be down); everything else in v1beta1.
func metalLBVersion(c rest.Interface, resource string) cache.Getter {
	if resource != "bgppeers" {
		return c
	}
	return versionGetter{c: c, gv: v1beta2.GroupVersion}
}

// versionGetter makes requests of a metallb.io client for another version.
type versionGetter struct {
	c  rest.Interface
	gv schema.GroupVersion
}

func (g versionGetter) Get() *rest.Request {
	return g.c.Get().AbsPath("/apis", g.gv.Group, g.gv.Version)
}
