// Package netnstest runs tests in network namespaces (internal/netns): a lab
// removed when the test ends, and the current test re-run inside a namespace.
package netnstest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// ChildEnv marks a re-executed test process that already runs inside the lab.
const ChildEnv = "ECMPLB_NETLAB_CHILD"

// routerNSEnv passes the router namespace's name to the re-executed child.
const routerNSEnv = "ECMPLB_TEST_ROUTER_NS"

// IsChild tells whether this process is the re-executed child.
func IsChild() bool { return os.Getenv(ChildEnv) != "" }

// RerunInNS runs the current test binary again inside ns, limited to the test named
// testName, with env added, and returns its combined output and error.
func RerunInNS(ns, testName string, env []string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	// The child's own -test.timeout makes a hang end with a goroutine dump; the
	// context kills it should even that fail.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, "-test.run", "^"+testName+"$", "-test.v", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(append(os.Environ(), ChildEnv+"=1"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// InLab runs the calling test inside a fresh speaker namespace linked to a
// router namespace: routerAddrs on the router side, speakerAddrs on the
// speaker side (CIDR notation). In the re-executed child it returns the
// router namespace's name; in the parent it returns "" once the child has
// passed, and fails the test otherwise. prepare, when not nil, runs in the
// parent with the router namespace before the child starts (to register
// extra cleanup).
func InLab(t *testing.T, routerAddrs, speakerAddrs []string, prepare func(routerNS string)) string {
	t.Helper()
	if IsChild() {
		return os.Getenv(routerNSEnv)
	}
	lab := Lab(t)
	rns, sns := NS(t, lab, "r"), NS(t, lab, "s")
	if prepare != nil {
		prepare(rns)
	}
	if err := lab.Link(rns, "elbr"+lab.ID(), routerAddrs, sns, "elbs"+lab.ID(), speakerAddrs); err != nil {
		t.Fatal(err)
	}
	out, err := RerunInNS(sns, t.Name(), []string{routerNSEnv + "=" + rns})
	t.Log("child output:\n" + out)
	if err != nil {
		t.Fatalf("child test failed: %v", err)
	}
	if !strings.Contains(out, "--- PASS: "+t.Name()) {
		t.Fatalf("child did not pass %s", t.Name())
	}
	return ""
}

// Lab returns a lab that is removed when t ends (a failed removal fails t). It
// skips t unless it runs as root, which namespaces need.
func Lab(t testing.TB) *netns.Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	lab := netns.NewLab()
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	return lab
}

// NS creates namespace role in lab (lab.NS) and fails t if it cannot.
func NS(t testing.TB, lab *netns.Lab, role string) string {
	t.Helper()
	name, err := lab.NS(role)
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// RequireRootLabEnv, when set (CI sets it), makes RootLab fail a test that
// cannot run for want of root instead of skipping it.
const RequireRootLabEnv = "ECMPLB_REQUIRE_ROOTLAB"

// RootLab is Lab for tests that must not go unrun where they are required:
// without root it skips t, or fails it when RequireRootLabEnv is set.
func RootLab(t testing.TB) *netns.Lab {
	t.Helper()
	if os.Geteuid() != 0 && os.Getenv(RequireRootLabEnv) != "" {
		t.Fatalf("%s is set but the test does not run as root (network namespaces need it)", RequireRootLabEnv)
	}
	return Lab(t)
}
