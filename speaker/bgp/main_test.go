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
