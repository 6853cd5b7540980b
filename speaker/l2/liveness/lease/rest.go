package lease

import (
	"context"
	"fmt"

	coordv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/internal/scheme/coordination"
)

// NewREST returns the Leases of namespace through a plain REST client of
// coordination.k8s.io/v1 with a scheme of that group alone: the speaker links
// neither the clientset nor another API group for them (internal/archtest
// TestSpeakerBinaryIsLean).
func NewREST(cfg *rest.Config, namespace string) (Leases, error) {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &coordv1.SchemeGroupVersion
	c.APIPath = "/apis"
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	c.NegotiatedSerializer = coordination.Codecs.WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("coordination.k8s.io client: %w", err)
	}
	return restLeases{rc, namespace}, nil
}

type restLeases struct {
	c  rest.Interface
	ns string
}

func (l restLeases) List(ctx context.Context, opts metav1.ListOptions) (*coordv1.LeaseList, error) {
	out := &coordv1.LeaseList{}
	err := l.c.Get().Namespace(l.ns).Resource("leases").VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(out)
	return out, err
}

func (l restLeases) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return l.c.Get().Namespace(l.ns).Resource("leases").VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
}

func (l restLeases) Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordv1.Lease, error) {
	out := &coordv1.Lease{}
	err := l.c.Get().Namespace(l.ns).Resource("leases").Name(name).VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(out)
	return out, err
}

func (l restLeases) Create(ctx context.Context, lease *coordv1.Lease, opts metav1.CreateOptions) (*coordv1.Lease, error) {
	out := &coordv1.Lease{}
	err := l.c.Post().Namespace(l.ns).Resource("leases").VersionedParams(&opts, metav1.ParameterCodec).Body(lease).Do(ctx).Into(out)
	return out, err
}

func (l restLeases) Update(ctx context.Context, lease *coordv1.Lease, opts metav1.UpdateOptions) (*coordv1.Lease, error) {
	out := &coordv1.Lease{}
	err := l.c.Put().Namespace(l.ns).Resource("leases").Name(lease.Name).VersionedParams(&opts, metav1.ParameterCodec).Body(lease).Do(ctx).Into(out)
	return out, err
}
