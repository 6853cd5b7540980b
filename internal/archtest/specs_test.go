package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ecmplb/ecmplb/internal/testenv"
)

// specSide are the scenario packages that hold or play specs; they may use
// only these scenario packages, never a backend (lab, kind): a spec runs on
// whichever backend the suite picked.
var specSide = map[string]bool{
	"scenarios":              true,
	"scenarios/runner":       true,
	"scenarios/check":        true,
	"scenarios/scenariofile": true,
	"scenarios/backend":      true,
	// The stream counter and its line protocol: backend-neutral, used by
	// the runner and by every backend.
	"scenarios/stream": true,
}

// suiteSetup is the one file that knows the backends: it picks one.
const suiteSetup = "scenarios/scenarios_suite_test.go"

// Specs import the backend interface, never a backend package.
func TestSpecsUseTheBackendInterface(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files := 0
	for dir := range specSide {
		paths, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			rel, _ := filepath.Rel(root, path)
			if rel == suiteSetup {
				continue
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			files++
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if !strings.HasPrefix(p, module+"scenarios/") {
					continue
				}
				if to := strings.TrimPrefix(p, module); !specSide[to] {
					t.Errorf("%s imports %s: specs and the runner use scenarios/backend; only %s picks a backend", rel, p, suiteSetup)
				}
			}
		}
	}
	if files < 10 {
		t.Fatalf("checked only %d files", files)
	}
}
