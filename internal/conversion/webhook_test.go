package conversion

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

const (
	peerV1 = `{"apiVersion":"metallb.io/v1beta1","kind":"BGPPeer","metadata":{"name":"tor1","namespace":"metallb-system","uid":"u1","resourceVersion":"7","labels":{"a":"b"}},` +
		`"spec":{"myASN":65100,"peerASN":65000,"peerAddress":"10.0.0.1","holdTime":"9s","nodeSelectors":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]},{"key":"edge","operator":"Exists"}]}]},"status":{}}`
	peerV2 = `{"apiVersion":"metallb.io/v1beta2","kind":"BGPPeer","metadata":{"name":"tor1","namespace":"metallb-system","uid":"u1","resourceVersion":"7","labels":{"a":"b"}},` +
		`"spec":{"myASN":65100,"peerASN":65000,"peerAddress":"10.0.0.1","holdTime":"9s","nodeSelectors":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]},{"key":"edge","operator":"Exists"}]}]},"status":{}}`
	pool = `{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","metadata":{"name":"p","namespace":"metallb-system"},"spec":{"addresses":["203.0.113.0/24"]}}`
)

func review(to string, objs ...string) string {
	var raws []runtime.RawExtension
	for _, o := range objs {
		raws = append(raws, runtime.RawExtension{Raw: []byte(o)})
	}
	b, err := json.Marshal(&apiextensionsv1.ConversionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "ConversionReview"},
		Request:  &apiextensionsv1.ConversionRequest{UID: "r1", DesiredAPIVersion: to, Objects: raws},
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name   string
		method string
		body   string
		code   int
		// For 200: the converted objects (JSON-equal) or the failure message part.
		want    []string
		failure string
	}{
		{name: "v1beta1 to v1beta2", body: review("metallb.io/v1beta2", peerV1), code: 200, want: []string{peerV2}},
		{name: "v1beta2 to v1beta1", body: review("metallb.io/v1beta1", peerV2), code: 200, want: []string{peerV1}},
		{name: "mixed list", body: review("metallb.io/v1beta2", peerV1, peerV2), code: 200, want: []string{peerV2, peerV2}},
		{name: "same version is identity", body: review("metallb.io/v1beta1", pool), code: 200, want: []string{pool}},
		{name: "empty request", body: review("metallb.io/v1beta2"), code: 200, want: nil},
		{name: "other kind", body: review("metallb.io/v1beta2", pool), code: 200,
			failure: `objects[0]: metallb.io/v1beta1 IPAddressPool "metallb-system/p": cannot convert to metallb.io/v1beta2`},
		{name: "unknown version", body: review("metallb.io/v2", peerV1), code: 200,
			failure: `BGPPeer "metallb-system/tor1": cannot convert to metallb.io/v2`},
		{name: "unknown spec field is refused, not dropped", code: 200,
			body:    review("metallb.io/v1beta2", strings.Replace(peerV1, `"myASN"`, `"futureField":1,"myASN"`, 1)),
			failure: `BGPPeer "metallb-system/tor1": spec: not converted, so as not to lose it: unknown field "futureField"`},
		{name: "field in another case is refused", code: 200,
			body:    review("metallb.io/v1beta2", strings.Replace(peerV1, `"peerAddress"`, `"PeerAddress"`, 1)),
			failure: `unknown field "PeerAddress"`},
		{name: "unknown selector field is refused", code: 200,
			body:    review("metallb.io/v1beta1", strings.Replace(peerV2, `{"key":"zone"`, `{"kee":1,"key":"zone"`, 1)),
			failure: `unknown field "nodeSelectors[0].matchExpressions[0].kee"`},
		{name: "duplicate field is refused", code: 200,
			body:    review("metallb.io/v1beta2", strings.Replace(peerV1, `"myASN":65100`, `"myASN":65100,"myASN":1`, 1)),
			failure: `duplicate field "myASN"`},
		{name: "unknown status field is refused", code: 200,
			body:    review("metallb.io/v1beta2", strings.Replace(peerV1, `"status":{}`, `"status":{"up":true}`, 1)),
			failure: `status: not converted`},
		{name: "unknown top-level field is refused", code: 200,
			body:    review("metallb.io/v1beta2", strings.Replace(peerV1, `"status":{}`, `"data":{}`, 1)),
			failure: `unknown field "data"`},
		{name: "one bad object fails the review", code: 200, body: review("metallb.io/v1beta2", peerV1, pool),
			failure: "objects[1]: "},
		{name: "GET", method: http.MethodGet, code: http.StatusMethodNotAllowed},
		{name: "not JSON", body: "{", code: http.StatusBadRequest},
		{name: "no request", body: `{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview"}`, code: http.StatusBadRequest},
		{name: "v1beta1 review", body: strings.Replace(review("metallb.io/v1beta2", peerV1), "apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1", 1),
			code: http.StatusBadRequest},
	}
	h := Handler(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, "/convert", strings.NewReader(tt.body)))
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code != http.StatusOK {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var out apiextensionsv1.ConversionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if out.APIVersion != "apiextensions.k8s.io/v1" || out.Kind != "ConversionReview" || out.Response == nil || out.Response.UID != "r1" {
				t.Fatalf("bad response envelope: %s", rec.Body)
			}
			r := out.Response
			if tt.failure != "" {
				if r.Result.Status != metav1.StatusFailure || !strings.Contains(r.Result.Message, tt.failure) || len(r.ConvertedObjects) != 0 {
					t.Fatalf("result %+v (%d objects), want a failure containing %q", r.Result, len(r.ConvertedObjects), tt.failure)
				}
				return
			}
			if r.Result.Status != metav1.StatusSuccess {
				t.Fatalf("result %+v", r.Result)
			}
			if len(r.ConvertedObjects) != len(tt.want) {
				t.Fatalf("%d objects, want %d", len(r.ConvertedObjects), len(tt.want))
			}
			for i, w := range tt.want {
				if !jsonEqual(t, r.ConvertedObjects[i].Raw, []byte(w)) {
					t.Errorf("object %d:\n got %s\nwant %s", i, r.ConvertedObjects[i].Raw, w)
				}
			}
		})
	}
}

// Metadata passes through as it came, including fields of which the typed
// ObjectMeta would change the form (timestamps, managedFields).
func TestConvertKeepsMetadata(t *testing.T) {
	meta := `{"name":"tor1","creationTimestamp":"2026-12-01T03:00:00Z","managedFields":[{"manager":"kubectl","operation":"Apply","apiVersion":"metallb.io/v1beta1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:myASN":{}}}}],"annotations":{"x":"y"}}`
	in := `{"apiVersion":"metallb.io/v1beta1","kind":"BGPPeer","metadata":` + meta + `,"spec":{"myASN":1,"peerASN":2,"peerAddress":"10.0.0.1"}}`
	out, err := Convert([]byte(in), "metallb.io/v1beta2")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(meta)); err != nil {
		t.Fatal(err)
	}
	if string(got.Metadata) != want.String() {
		t.Fatalf("metadata\n got %s\nwant %s", got.Metadata, want.String())
	}
}
