package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/validation"
)

// kinds are the admitted objects: webhook path → a new empty object.
var kinds = map[string]func() client.Object{
	"/validate-metallb-io-v1beta1-ipaddresspool":    func() client.Object { return &v1beta1.IPAddressPool{} },
	"/validate-metallb-io-v1beta1-bgppeer":          func() client.Object { return &v1beta1.BGPPeer{} },
	"/validate-metallb-io-v1beta2-bgppeer":          func() client.Object { return &v1beta2.BGPPeer{} },
	"/validate-metallb-io-v1beta1-bgpadvertisement": func() client.Object { return &v1beta1.BGPAdvertisement{} },
	"/validate-metallb-io-v1beta1-bfdprofile":       func() client.Object { return &v1beta1.BFDProfile{} },
	"/validate-metallb-io-v1beta1-community":        func() client.Object { return &v1beta1.Community{} },
	"/validate-metallb-io-v1beta1-l2advertisement":  func() client.Object { return &v1beta1.L2Advertisement{} },
}

// Paths returns the webhook paths, one per kind and version.
func Paths() []string {
	out := make([]string, 0, len(kinds))
	for p := range kinds {
		out = append(out, p)
	}
	return out
}

// admitter decodes admission requests and hands them, with the rest of the
// configuration, to validation.Admit.
type admitter struct {
	// reader reads the configuration uncached: a review must see what was
	// written just before it (kubectl apply of a pool, then of one that
	// overlaps it), which a cache may not have yet. Configurations are
	// small and written rarely; a few lists per write are cheap.
	reader    client.Reader
	namespace string
	log       *slog.Logger
}

func (a *admitter) handlers(s *runtime.Scheme) map[string]http.Handler {
	dec := admission.NewDecoder(s)
	out := make(map[string]http.Handler, len(kinds))
	for path, newObj := range kinds {
		wh := &admission.Webhook{Handler: admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
			return a.review(ctx, dec, newObj(), req)
		})}
		out[path] = wh
	}
	return out
}

func (a *admitter) review(ctx context.Context, dec admission.Decoder, obj client.Object, req admission.Request) admission.Response {
	raw := req.Object
	if req.Operation == admissionv1.Delete {
		raw = req.OldObject
	}
	if err := dec.DecodeRaw(raw, obj); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("%s %s/%s: %w", req.Kind.Kind, req.Namespace, req.Name, err))
	}
	kind := req.Kind.Kind
	if req.Namespace != a.namespace {
		if req.Operation == admissionv1.Delete {
			return admission.Allowed("")
		}
		return admission.Denied(fmt.Sprintf("%s %s/%s: metadata.namespace: ecmplb reads metallb.io objects only in namespace %s", kind, req.Namespace, req.Name, a.namespace))
	}
	var op validation.Operation
	switch req.Operation {
	case admissionv1.Create:
		op = validation.Create
	case admissionv1.Update:
		op = validation.Update
	case admissionv1.Delete:
		op = validation.Delete
	default:
		return admission.Allowed("")
	}
	snap, err := a.snapshot(ctx, obj)
	if err != nil {
		// Fail closed: the apiserver reports this as the webhook's error.
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s %s/%s: reading the configuration: %w", kind, req.Namespace, req.Name, err))
	}
	if err := validation.Admit(op, obj, snap); err != nil {
		msg := Message(kind, req.Namespace, req.Name, err)
		a.log.Info("admission refused", "operation", req.Operation, "kind", kind, "object", req.Namespace+"/"+req.Name, "reason", msg)
		return admission.Denied(msg)
	}
	return admission.Allowed("")
}

// Message is what the user sees for a refused object: one
// "<Kind> <ns>/<name>: <field>: <detail>" per problem, joined by "; ".
func Message(kind, ns, name string, err error) string {
	var lines []string
	for _, e := range leaves(err) {
		lines = append(lines, fmt.Sprintf("%s %s/%s: %s", kind, ns, name, e.Error()))
	}
	return strings.Join(lines, "; ")
}

// leaves flattens joined errors (errors.Join) into their parts; a wrapped
// *FieldError stays whole.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// snapshot is the rest of the configuration in the namespace: every other
// metallb.io object (not obj itself) and the Secret obj names, if a peer.
func (a *admitter) snapshot(ctx context.Context, obj client.Object) (validation.Snapshot, error) {
	s := validation.Snapshot{Namespace: a.namespace}
	in := client.InNamespace(a.namespace)
	var (
		pools v1beta1.IPAddressPoolList
		peers v1beta2.BGPPeerList
		ads   v1beta1.BGPAdvertisementList
		comms v1beta1.CommunityList
		bfds  v1beta1.BFDProfileList
		l2s   v1beta1.L2AdvertisementList
	)
	for _, l := range []client.ObjectList{&pools, &peers, &ads, &comms, &bfds, &l2s} {
		if err := a.reader.List(ctx, l, in); err != nil {
			return s, fmt.Errorf("listing %T: %w", l, err)
		}
	}
	self := func(kind client.Object, name string) bool {
		return sameKind(kind, obj) && name == obj.GetName()
	}
	s.Pools = others(pools.Items, self)
	s.Peers = others(peers.Items, self)
	s.Advertisements = others(ads.Items, self)
	s.Communities = others(comms.Items, self)
	s.BFDProfiles = others(bfds.Items, self)
	s.L2Advertisements = others(l2s.Items, self)
	// Only the peer under review can be refused for its Secret: read that
	// one Secret (get, no Secret informer: the controller has no reason to
	// cache every Secret of the namespace).
	if ref := passwordSecret(obj, a.namespace); ref != "" {
		var sec corev1.Secret
		err := a.reader.Get(ctx, client.ObjectKey{Namespace: a.namespace, Name: ref}, &sec)
		switch {
		case err == nil:
			s.Secrets = map[string]*corev1.Secret{ref: &sec}
		case !apierrors.IsNotFound(err):
			return s, fmt.Errorf("reading Secret %s/%s: %w", a.namespace, ref, err)
		}
	}
	return s, nil
}

// sameKind reports whether a and b are the same kind; a BGPPeer is one kind
// in either version.
func sameKind(a, b client.Object) bool {
	return kindOf(a) == kindOf(b)
}

func kindOf(o client.Object) string {
	switch o.(type) {
	case *v1beta1.BGPPeer, *v1beta2.BGPPeer:
		return "BGPPeer"
	}
	return fmt.Sprintf("%T", o)
}

func passwordSecret(obj client.Object, namespace string) string {
	var ns, name string
	switch p := obj.(type) {
	case *v1beta1.BGPPeer:
		ns, name = p.Spec.PasswordSecret.Namespace, p.Spec.PasswordSecret.Name
	case *v1beta2.BGPPeer:
		ns, name = p.Spec.PasswordSecret.Namespace, p.Spec.PasswordSecret.Name
	}
	if ns != "" && ns != namespace {
		return "" // Admit checks only Secrets of the configured namespace
	}
	return name
}

// others returns the items that are not the object under review.
func others[T any, P interface {
	*T
	client.Object
}](items []T, self func(client.Object, string) bool) []T {
	var out []T
	for i := range items {
		o := P(&items[i])
		if !self(o, o.GetName()) {
			out = append(out, items[i])
		}
	}
	return out
}
