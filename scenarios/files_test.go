package scenarios_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"

	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/scenarios/runner"
	"github.com/ecmplb/ecmplb/scenarios/scenariofile"
)

// The scenario files: SCENARIOS (paths separated by spaces or commas,
// relative to the repository root) when set, else the catalogue (scenarios/catalogue/*.yaml) and the complete
// example of scenarios/README.md, so the documentation cannot rot.
var _ = Describe("scenario files", func() {
	root, err := testenv.RepoRoot()
	if err != nil {
		runner.Failing("catalogue", err)
		return
	}
	// Relative paths are taken from the repository root, where make runs.
	if env := strings.FieldsFunc(os.Getenv("SCENARIOS"), func(r rune) bool { return r == ',' || r == ' ' }); len(env) > 0 {
		for i, p := range env {
			if !filepath.IsAbs(p) {
				env[i] = filepath.Join(root, p)
			}
		}
		runner.Specs(env, up)
		return
	}
	files, _ := filepath.Glob(filepath.Join(root, "scenarios", "catalogue", "*.yaml"))
	sort.Strings(files)
	runner.Specs(files, up)
	readme := filepath.Join(root, "scenarios", "README.md")
	name, data, err := scenariofile.ReadmeExample(readme)
	if err != nil {
		runner.Failing(readme, err)
		return
	}
	s, err := scenariofile.Parse(name, filepath.Dir(readme), data)
	if err != nil {
		runner.Failing(name, err)
		return
	}
	s.Labels = append(s.Labels, "readme")
	runner.Spec(s, up)
})
