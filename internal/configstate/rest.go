package configstate

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// REST is the API over a metallb.io/v1beta1 REST client, in one namespace.
type REST struct {
	Client    rest.Interface
	Namespace string
}

const resource = "configurationstates"

var typeMeta = metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: "ConfigurationState"}

// Get reads the object.
func (r REST) Get(ctx context.Context, name string) (*v1beta1.ConfigurationState, error) {
	out := &v1beta1.ConfigurationState{}
	err := r.Client.Get().Namespace(r.Namespace).Resource(resource).Name(name).Do(ctx).Into(out)
	return out, err
}

// Create creates the object (its status is ignored by the apiserver).
func (r REST) Create(ctx context.Context, o *v1beta1.ConfigurationState) (*v1beta1.ConfigurationState, error) {
	o = o.DeepCopy()
	o.TypeMeta = typeMeta
	out := &v1beta1.ConfigurationState{}
	err := r.Client.Post().Namespace(r.Namespace).Resource(resource).Body(o).Do(ctx).Into(out)
	return out, err
}

// UpdateStatus writes the status subresource (a conflict fails the pass,
// which re-reads and retries).
func (r REST) UpdateStatus(ctx context.Context, o *v1beta1.ConfigurationState) error {
	o = o.DeepCopy()
	o.TypeMeta = typeMeta
	return r.Client.Put().Namespace(r.Namespace).Resource(resource).Name(o.Name).SubResource("status").Body(o).Do(ctx).Error()
}
