// The test routers (GoBGP listeners in this binary) need TCP MD5 on their
// listening sockets, which Linux refuses on the multipath TCP sockets Go's
// listeners use by default.
//go:debug multipathtcp=0

package bgp

import (
	"os"
	"testing"

	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
)

func TestMain(m *testing.M) {
	testrouter.MaybeRun()
	os.Exit(m.Run())
}
