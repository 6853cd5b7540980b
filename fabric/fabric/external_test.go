package fabric

import "testing"

func TestHostLinkNameFitsAnInterfaceName(t *testing.T) {
	for _, tc := range []struct {
		instance string
		i        int
		want     string
	}{
		{"k1a2b3c", 0, "elbtk1a2b3c0"},
		{"k1a2b3c", 1, "elbtk1a2b3c1"},
	} {
		if got := HostLinkName(tc.instance, tc.i); got != tc.want {
			t.Errorf("HostLinkName(%q, %d) = %q, want %q", tc.instance, tc.i, got, tc.want)
		}
	}
	long := HostLinkName("abcdefghijklmnop", 3)
	if len(long) > 15 || long[:4] != HostLinkPrefix || long == HostLinkName("abcdefghijklmnoq", 3) {
		t.Errorf("long instance: %q", long)
	}
}
