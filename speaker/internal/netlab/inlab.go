package netlab

import (
	"os"
	"strings"
	"testing"
)

// routerNSEnv passes the router namespace's name to the re-executed child.
const routerNSEnv = "ECMPLB_TEST_ROUTER_NS"

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
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	lab := New()
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	rns, err := lab.NS("r")
	if err != nil {
		t.Fatal(err)
	}
	sns, err := lab.NS("s")
	if err != nil {
		t.Fatal(err)
	}
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
