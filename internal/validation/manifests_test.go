package validation

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

const (
	docsDir  = "../../deploy/examples/metallb-docs"
	badDir   = "testdata/bad"
	needsDir = "testdata/needs"
	docsNS   = "metallb-system"
	// Header keys (testenv.ManifestHeader).
	headerField = "field"
	headerNeeds = "needs"
	headerOp    = "operation"
	headerExp   = "expect"
)

var manifestScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, v1beta1.AddToScheme, v1beta2.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// decodeManifest reads one manifest strictly (an unknown field is an
// error, as kubectl's server-side field validation makes it) and returns
// it with its leading "# key: value" header lines.
func decodeManifest(t *testing.T, path string) (client.Object, map[string]string, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr := testenv.ManifestHeader(data)
	ser := json.NewSerializerWithOptions(json.DefaultMetaFactory, manifestScheme, manifestScheme, json.SerializerOptions{Yaml: true, Strict: true})
	obj, _, err := ser.Decode(data, nil, nil)
	if err != nil {
		return nil, hdr, err
	}
	co, ok := obj.(client.Object)
	if !ok {
		t.Fatalf("%s: %T is not a client.Object", path, obj)
	}
	return co, hdr, nil
}

// store is a configuration being applied: objects by kind and name.
type store map[string]client.Object

func objKey(o client.Object) string {
	return kindOf(o) + "/" + o.GetName()
}

func kindOf(o client.Object) string {
	if _, ok := o.(*v1beta1.BGPPeer); ok {
		return "BGPPeer"
	}
	if _, ok := o.(*v1beta2.BGPPeer); ok {
		return "BGPPeer"
	}
	return typeName(o)
}

func typeName(o client.Object) string {
	switch o.(type) {
	case *v1beta1.IPAddressPool:
		return "IPAddressPool"
	case *v1beta1.BGPAdvertisement:
		return "BGPAdvertisement"
	case *v1beta1.Community:
		return "Community"
	case *v1beta1.BFDProfile:
		return "BFDProfile"
	case *v1beta1.L2Advertisement:
		return "L2Advertisement"
	case *corev1.Secret:
		return "Secret"
	case *corev1.Service:
		return "Service"
	}
	return "other"
}

// snapshot is what the webhook would list: every object of the
// configuration but the one under review (same kind and name).
func (st store) snapshot(except client.Object) Snapshot {
	s := Snapshot{Namespace: docsNS, Secrets: map[string]*corev1.Secret{}}
	skip := ""
	if except != nil {
		skip = objKey(except)
	}
	for k, o := range st {
		if k == skip {
			continue
		}
		switch o := o.(type) {
		case *v1beta1.IPAddressPool:
			s.Pools = append(s.Pools, *o)
		case *v1beta2.BGPPeer:
			s.Peers = append(s.Peers, *o)
		case *v1beta1.BGPPeer:
			s.Peers = append(s.Peers, *peerToV1beta2(o))
		case *v1beta1.BGPAdvertisement:
			s.Advertisements = append(s.Advertisements, *o)
		case *v1beta1.Community:
			s.Communities = append(s.Communities, *o)
		case *v1beta1.BFDProfile:
			s.BFDProfiles = append(s.BFDProfiles, *o)
		case *v1beta1.L2Advertisement:
			s.L2Advertisements = append(s.L2Advertisements, *o)
		case *corev1.Secret:
			s.Secrets[o.Name] = o
		}
	}
	return s
}

// apply admits o against the store and stores it.
func (st store) apply(t *testing.T, name string, o client.Object) error {
	t.Helper()
	op := Create
	if _, ok := st[objKey(o)]; ok {
		op = Update
	}
	if _, ok := o.(*corev1.Service); !ok {
		if err := Admit(op, o, st.snapshot(o)); err != nil {
			return err
		}
	}
	st[objKey(o)] = o
	return nil
}

// TestMetalLBDocsExamplesAreAdmitted applies every example of
// deploy/examples/metallb-docs in apply-order.txt's order, as one
// configuration, each admitted against all that came before.
func TestMetalLBDocsExamplesAreAdmitted(t *testing.T) {
	order, err := testenv.ReadApplyOrder(docsDir)
	if err != nil {
		t.Fatal(err)
	}
	st := store{}
	applied := map[string]bool{}
	for _, step := range order {
		switch {
		case step.File != "":
			o, _, err := decodeManifest(t, filepath.Join(docsDir, step.File))
			if err != nil {
				t.Fatalf("%s: %v", step.File, err)
			}
			if err := st.apply(t, step.File, o); err != nil {
				t.Errorf("%s refused: %v", step.File, err)
			}
			applied[step.File] = true
		default:
			key := step.Kind + "/" + step.Name
			o, ok := st[key]
			if !ok {
				t.Fatalf("apply-order.txt: delete %s: not applied", key)
			}
			if err := Admit(Delete, o, st.snapshot(o)); err != nil {
				t.Errorf("delete %s refused: %v", key, err)
			}
			delete(st, key)
		}
	}
	files, _ := filepath.Glob(filepath.Join(docsDir, "*.yaml"))
	for _, f := range files {
		if !applied[filepath.Base(f)] {
			t.Errorf("%s is not in apply-order.txt", filepath.Base(f))
		}
	}
	if len(files) < 25 {
		t.Errorf("only %d examples", len(files))
	}
}

// TestMetalLBDocsUnsupportedExamples: the examples ecmplb refuses (see the
// folder's README.md) are refused with the message their header expects.
func TestMetalLBDocsUnsupportedExamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(docsDir, "unsupported", "*.yaml"))
	if len(files) == 0 {
		t.Fatal("no unsupported examples")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			o, hdr, err := decodeManifest(t, f)
			want := hdr[headerExp]
			if want == "" {
				t.Fatal("no '# expect:' header")
			}
			if err == nil {
				err = Admit(Create, o, Snapshot{Namespace: docsNS})
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %v, want it to contain %q", err, want)
			}
		})
	}
}

// TestBadManifests runs the table of bad manifests (testdata/bad) through
// Admit, each against the good examples its "# needs:" header names, and
// checks that the refusal names the field of its "# field:" header.
func TestBadManifests(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(badDir, "*.yaml"))
	if len(files) < 35 {
		t.Fatalf("only %d bad manifests, want at least 35", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, _ := os.ReadFile(f)
			if !strings.HasPrefix(string(data), "# field: ") {
				t.Fatalf("first line must be %q", "# field: <path>")
			}
			o, hdr, err := decodeManifest(t, f)
			if err != nil {
				t.Fatal(err)
			}
			field := hdr[headerField]
			if hdr["reason"] == "" {
				t.Error("no '# reason:' header")
			}
			st := store{}
			for _, n := range strings.Fields(hdr[headerNeeds]) {
				p := filepath.Join(docsDir, n)
				if _, err := os.Stat(p); err != nil {
					p = filepath.Join(needsDir, n)
				}
				no, _, err := decodeManifest(t, p)
				if err != nil {
					t.Fatalf("needs %s: %v", n, err)
				}
				if err := st.apply(t, n, no); err != nil {
					t.Fatalf("needs %s refused: %v", n, err)
				}
			}
			op := Operation(hdr[headerOp])
			if op == "" {
				op = Create
				if _, ok := st[objKey(o)]; ok {
					op = Update
				}
			}
			err = Admit(op, o, st.snapshot(o))
			if err == nil {
				t.Fatalf("admitted; want a refusal naming %s", field)
			}
			if !namesField(err, field) {
				t.Fatalf("refusal %q does not name field %s", err, field)
			}
		})
	}
}

// namesField tells whether err is or joins a *FieldError for field or
// one of its parts (spec.communities[1].name names spec.communities).
func namesField(err error, field string) bool {
	if fe := (*FieldError)(nil); errors.As(err, &fe) && (fe.Field == field ||
		strings.HasPrefix(fe.Field, field+".") || strings.HasPrefix(fe.Field, field+"[")) {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if namesField(e, field) {
				return true
			}
		}
	}
	return false
}
