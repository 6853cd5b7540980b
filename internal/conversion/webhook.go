package conversion

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "sigs.k8s.io/json"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
)

// maxReviewBytes bounds a ConversionReview body; the apiserver sends whole
// lists, and a BGPPeer is well under a kilobyte.
const maxReviewBytes = 32 << 20

// Handler serves apiextensions.k8s.io/v1 ConversionReviews for the CRDs
// whose spec.conversion names it (BGPPeer) at whatever path the caller
// mounts it. Each object of the request is converted to desiredAPIVersion:
// BGPPeer between metallb.io/v1beta1 and v1beta2, anything else in its own
// version unchanged. An object it cannot convert (another kind or version, a
// field it does not know) fails the whole review with a message naming the
// object, as the apiserver wants; nothing is dropped silently.
func Handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "conversion reviews are POSTed", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxReviewBytes+1))
		if err != nil {
			http.Error(w, "reading the ConversionReview: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(body) > maxReviewBytes {
			http.Error(w, fmt.Sprintf("ConversionReview larger than %d bytes", maxReviewBytes), http.StatusRequestEntityTooLarge)
			return
		}
		var review apiextensionsv1.ConversionReview
		if err := json.Unmarshal(body, &review); err != nil {
			http.Error(w, "decoding the ConversionReview: "+err.Error(), http.StatusBadRequest)
			return
		}
		if gvk := review.GroupVersionKind(); gvk != apiextensionsv1.SchemeGroupVersion.WithKind("ConversionReview") {
			http.Error(w, fmt.Sprintf("want an %s ConversionReview, got %s", apiextensionsv1.SchemeGroupVersion, gvk), http.StatusBadRequest)
			return
		}
		if review.Request == nil {
			http.Error(w, "ConversionReview without a request", http.StatusBadRequest)
			return
		}
		resp := Review(review.Request)
		if resp.Result.Status == metav1.StatusFailure {
			log.Warn("conversion refused", "uid", review.Request.UID, "to", review.Request.DesiredAPIVersion, "error", resp.Result.Message)
		} else {
			log.Debug("converted", "uid", review.Request.UID, "to", review.Request.DesiredAPIVersion, "objects", len(resp.ConvertedObjects))
		}
		out, err := json.Marshal(&apiextensionsv1.ConversionReview{TypeMeta: review.TypeMeta, Response: resp})
		if err != nil {
			http.Error(w, "encoding the ConversionReview: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
}

// Review answers one conversion request.
func Review(req *apiextensionsv1.ConversionRequest) *apiextensionsv1.ConversionResponse {
	resp := &apiextensionsv1.ConversionResponse{UID: req.UID, Result: metav1.Status{Status: metav1.StatusSuccess}}
	var errs []error
	for i, o := range req.Objects {
		out, err := Convert(o.Raw, req.DesiredAPIVersion)
		if err != nil {
			errs = append(errs, fmt.Errorf("objects[%d]: %w", i, err))
			continue
		}
		resp.ConvertedObjects = append(resp.ConvertedObjects, runtime.RawExtension{Raw: out})
	}
	if err := errors.Join(errs...); err != nil {
		resp.ConvertedObjects = nil
		resp.Result = metav1.Status{Status: metav1.StatusFailure, Message: err.Error()}
	}
	return resp
}

// object is the top level of a BGPPeer, decoded strictly: metadata is kept
// as it came (the apiserver restores it anyway), spec and status are decoded
// into the typed versions.
type object struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	Spec       json.RawMessage `json:"spec,omitempty"`
	Status     json.RawMessage `json:"status,omitempty"`
}

// Convert converts one serialized object to apiVersion to: a BGPPeer
// between metallb.io/v1beta1 and v1beta2, or any object already in version
// to (returned as it is). The error names the object.
func Convert(raw []byte, to string) ([]byte, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	name := head.Metadata.Name
	if head.Metadata.Namespace != "" {
		name = head.Metadata.Namespace + "/" + name
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s %s %q: %s", head.APIVersion, head.Kind, name, fmt.Sprintf(format, args...))
	}
	if head.APIVersion == to {
		return raw, nil
	}
	if head.Kind != "BGPPeer" || !bgpPeerVersion(head.APIVersion) || !bgpPeerVersion(to) {
		return nil, fail("cannot convert to %s: only BGPPeer converts, between %s and %s", to, v1beta1.GroupVersion, v1beta2.GroupVersion)
	}
	var obj object
	if err := strict(raw, &obj); err != nil {
		return nil, fail("%v", err)
	}
	var spec any
	switch head.APIVersion {
	case v1beta1.GroupVersion.String():
		var s v1beta1.BGPPeerSpec
		if err := strictField("spec", obj.Spec, &s); err != nil {
			return nil, fail("%v", err)
		}
		spec = specToV1beta2(s)
	default:
		var s v1beta2.BGPPeerSpec
		if err := strictField("spec", obj.Spec, &s); err != nil {
			return nil, fail("%v", err)
		}
		spec = specToV1beta1(s)
	}
	// Status is empty in both versions; anything in it is unknown to us.
	if err := strictField("status", obj.Status, &v1beta2.BGPPeerStatus{}); err != nil {
		return nil, fail("%v", err)
	}
	if obj.Spec != nil {
		b, err := json.Marshal(spec)
		if err != nil {
			return nil, fail("encoding spec: %v", err)
		}
		obj.Spec = b
	}
	obj.APIVersion = to
	out, err := json.Marshal(&obj)
	if err != nil {
		return nil, fail("encoding: %v", err)
	}
	return out, nil
}

func bgpPeerVersion(apiVersion string) bool {
	return apiVersion == v1beta1.GroupVersion.String() || apiVersion == v1beta2.GroupVersion.String()
}

// strict decodes data into v refusing unknown and duplicate fields and
// matching names case-sensitively, as the apiserver does.
func strict(data []byte, v any) error {
	strictErrs, err := kjson.UnmarshalStrict(data, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return fmt.Errorf("not converted, so as not to lose it: %w", errors.Join(strictErrs...))
	}
	return nil
}

func strictField(field string, data json.RawMessage, v any) error {
	if data == nil || bytes.Equal(data, []byte("null")) {
		return nil
	}
	if err := strict(data, v); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}
