package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/ecmplb/ecmplb/internal/testenv"
)

const module = "github.com/ecmplb/ecmplb/"

type pkg struct {
	ImportPath string
	Imports    []string
}

// area is the top-level directory of one of our packages ("" for others).
func area(path string) string {
	if !strings.HasPrefix(path, module) {
		return ""
	}
	a, _, _ := strings.Cut(strings.TrimPrefix(path, module), "/")
	return a
}

// forbidden lists, per area, the areas its non-test code must not import.
var forbidden = map[string][]string{
	// api holds types only.
	"api": {"controller", "speaker", "bfd", "fabric", "scenarios", "reports", "kindconfig", "internal", "deploy"},
	// bfd is a standalone protocol library (its bench may use the shared
	// FRR test helpers in internal/frrlab, nothing else of ours).
	"bfd": {"api", "controller", "speaker", "fabric", "scenarios", "reports", "kindconfig", "deploy"},
	// controller and speaker meet only through the API server, and never
	// depend on the harness.
	"controller": {"speaker", "fabric", "scenarios", "kindconfig", "reports"},
	"speaker":    {"controller", "fabric", "scenarios", "kindconfig", "reports"},
	// Shared code serves the components; it never depends on one of them.
	"internal": {"controller", "speaker", "fabric", "scenarios", "kindconfig", "reports"},
	// The fabric is an independent implementation of the router side, so the
	// harness cannot share a bug with what it tests.
	"fabric": {"speaker", "controller"},
}

// forbiddenExternal lists, per area, import path prefixes outside the
// project its non-test code must not use.
var forbiddenExternal = map[string][]string{
	// No Kubernetes in the protocol library.
	"bfd": {"k8s.io/", "sigs.k8s.io/", "github.com/osrg/gobgp", module + "internal/testenv"},
}

func TestDependencyRules(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		from := area(p.ImportPath)
		for _, imp := range p.Imports {
			for _, bad := range forbiddenExternal[from] {
				if strings.HasPrefix(imp, bad) {
					t.Errorf("%s imports %s: %s must not depend on %s", p.ImportPath, imp, from, bad)
				}
			}
			to := area(imp)
			for _, bad := range forbidden[from] {
				if to == bad {
					t.Errorf("%s imports %s: %s must not depend on %s", p.ImportPath, imp, from, bad)
				}
			}
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked only %d packages; go list found too little", checked)
	}
}

// The speaker runs on every node, so its binary links only what it uses: no
// built-in API group beyond core/v1 and discovery/v1, so no clientset, typed
// clients, informer factory, listers, client-go's scheme (which installs every
// group) or controller-runtime's client (which imports it); plain REST
// clients of internal/scheme/lean instead. Linked and initialised, those cost
// the speaker about 24 MiB of resident memory and 38 MB of binary. Nor
// client-go's event recorder, which brings strategic merge patch and with it
// the OpenAPI models (3.2 MiB of the binary resident at start); the speaker
// writes its Events with internal/events. The one other group is
// coordination/v1, the Lease type alone (no client, no other group), which
// layer 2 mode's fencing reads and writes through a plain REST client
// (speaker/l2/liveness/lease.NewREST).
func TestSpeakerBinaryIsLean(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-deps", "./speaker")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 100 {
		t.Fatalf("only %d dependencies listed", len(deps))
	}
	for _, d := range deps {
		switch {
		case strings.HasPrefix(d, "k8s.io/client-go/kubernetes"), d == module+"internal/scheme",
			strings.HasPrefix(d, "k8s.io/client-go/informers"), strings.HasPrefix(d, "k8s.io/client-go/listers"),
			strings.HasPrefix(d, "sigs.k8s.io/controller-runtime/pkg/client"),
			d == "k8s.io/client-go/tools/record", d == "k8s.io/apimachinery/pkg/util/strategicpatch",
			strings.HasPrefix(d, "github.com/google/gnostic-models/"), strings.HasPrefix(d, "k8s.io/kube-openapi/"),
			strings.HasPrefix(d, "k8s.io/api/") && d != "k8s.io/api/core/v1" && d != "k8s.io/api/discovery/v1" &&
				d != "k8s.io/api/coordination/v1":
			t.Errorf("the speaker links %s", d)
		}
	}
}
