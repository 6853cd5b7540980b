package watch

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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

// NewKubeClients returns REST clients of core/v1 and discovery/v1 that speak
// protobuf, with the lean scheme's codecs (see KubeListWatch).
func NewKubeClients(cfg *rest.Config) (core, discovery rest.Interface, err error) {
	mk := func(gv schema.GroupVersion, apiPath string) (rest.Interface, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion, c.APIPath = &gv, apiPath
		c.ContentType = runtime.ContentTypeProtobuf
		c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
		c.NegotiatedSerializer = lean.Codecs.WithoutConversion()
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientFor(c)
	}
	if core, err = mk(corev1.SchemeGroupVersion, "/api"); err != nil {
		return nil, nil, fmt.Errorf("core/v1 client: %w", err)
	}
	if discovery, err = mk(discoveryv1.SchemeGroupVersion, "/apis"); err != nil {
		return nil, nil, fmt.Errorf("discovery/v1 client: %w", err)
	}
	return core, discovery, nil
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
