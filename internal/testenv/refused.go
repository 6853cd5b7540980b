package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// RefusedManifest is one manifest the apiserver (its CRD schemas and
// ecmplb's admission webhooks) must refuse, read from its header comment:
//
//	# field: spec.addresses[0]          the field the refusal must name
//	# needs: a.yaml b.yaml              applied first (found in NeedsDirs)
//	# operation: DELETE                 refuse the deletion (default: apply)
//	# reason: …                         why (for people)
type RefusedManifest struct {
	Path, Field, Operation, Reason string
	Needs                          []string
}

// ReadRefusedManifests reads every *.yaml of dir, sorted by name.
func ReadRefusedManifests(dir string) ([]RefusedManifest, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []RefusedManifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		h := ManifestHeader(data)
		m := RefusedManifest{Path: f, Field: h["field"], Operation: h["operation"], Reason: h["reason"], Needs: strings.Fields(h["needs"])}
		if m.Field == "" {
			return nil, fmt.Errorf("%s: no '# field:' header", f)
		}
		out = append(out, m)
	}
	return out, nil
}

// ManifestHeader returns a manifest's leading "# key: value" comment lines
// by key (the format of RefusedManifest's header and of the examples'
// "# expect:" lines).
func ManifestHeader(data []byte) map[string]string {
	h := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "#"), ":"); ok {
			h[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return h
}

// ApplyStep is one line of an apply-order.txt: "apply FILE" (File set) or
// "delete KIND NAME" (Kind and Name set).
type ApplyStep struct {
	File, Kind, Name string
}

// ReadApplyOrder reads dir/apply-order.txt: the order in which a folder of
// examples applies as one configuration. Blank lines and # comments are
// skipped; any other line is an error.
func ReadApplyOrder(dir string) ([]ApplyStep, error) {
	data, err := os.ReadFile(filepath.Join(dir, "apply-order.txt"))
	if err != nil {
		return nil, err
	}
	var out []ApplyStep
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		case f[0] == "apply" && len(f) == 2:
			out = append(out, ApplyStep{File: f[1]})
		case f[0] == "delete" && len(f) == 3:
			out = append(out, ApplyStep{Kind: f[1], Name: f[2]})
		default:
			return nil, fmt.Errorf("%s/apply-order.txt:%d: want \"apply FILE\" or \"delete KIND NAME\", got %q", dir, i+1, line)
		}
	}
	return out, nil
}

// Kubectl runs the pinned kubectl against this control plane as admin.
func (e *Env) Kubectl(stdin string, args ...string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	bins, err := FindBinaries(root)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(bins.Kubectl, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// CheckRefused runs each manifest as a subtest, as a user would with
// kubectl: its needs are applied (they must be accepted), then the manifest
// is applied (or, with operation DELETE, deleted), which must fail with a
// message naming the field. Afterwards the subtest deletes what it created,
// in reverse order, so the next starts from the same state. needsDirs are
// searched in order for each needed file.
func (e *Env) CheckRefused(t *testing.T, manifests []RefusedManifest, needsDirs ...string) {
	t.Helper()
	for _, m := range manifests {
		t.Run(filepath.Base(m.Path), func(t *testing.T) {
			var created []string
			t.Cleanup(func() {
				for _, f := range slices.Backward(created) {
					if out, err := e.Kubectl("", "delete", "--ignore-not-found", "--wait=true", "-f", f); err != nil {
						t.Errorf("cleanup: kubectl delete -f %s: %v\n%s", f, err, out)
					}
				}
			})
			for _, n := range m.Needs {
				p := findIn(n, needsDirs)
				if p == "" {
					t.Fatalf("needs %s: not in %v", n, needsDirs)
				}
				created = append(created, p)
				if out, err := e.Kubectl("", "apply", "-f", p); err != nil {
					t.Fatalf("needs %s refused: %v\n%s", n, err, out)
				}
			}
			verb := "apply"
			if strings.EqualFold(m.Operation, "DELETE") {
				verb = "delete"
			} else {
				created = append(created, m.Path)
			}
			out, err := e.Kubectl("", verb, "-f", m.Path)
			if err == nil {
				t.Fatalf("kubectl %s succeeded, want a refusal naming %s (%s):\n%s", verb, m.Field, m.Reason, out)
			}
			if !namesField(out, m.Field) {
				t.Fatalf("kubectl %s refused without naming %s:\n%s", verb, m.Field, out)
			}
			t.Logf("refused: %s", strings.TrimSpace(out))
		})
	}
}

func findIn(name string, dirs []string) string {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// namesField reports whether a refusal names field: in full
// ("spec.addresses[0]: …"), or as a CEL rule on the parent object reports
// it, the parent path followed by a message naming the last segment
// ("spec: Invalid value: \"object\": one of peerASN or … must be set").
func namesField(out, field string) bool {
	if strings.Contains(out, field) {
		return true
	}
	i := strings.LastIndex(field, ".")
	if i < 0 {
		return false
	}
	parent, leaf := field[:i], field[i+1:]
	j := strings.Index(out, parent+": ")
	return j >= 0 && strings.Contains(out[j:], leaf)
}
