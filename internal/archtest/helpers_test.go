package archtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ecmplb/ecmplb/internal/testenv"
)

// concern is one job that has exactly one home under internal/: code elsewhere
// (tests included) that does it itself is a second helper in the making.
type concern struct {
	what  string
	home  []string // directories (slash-separated, from the repository root) allowed to do it
	match *regexp.Regexp
}

var concerns = []concern{
	{"creates network namespaces, veths or bridges (use internal/netns)",
		[]string{"internal/netns/"},
		regexp.MustCompile(`"netns",\s*"add"|netns\.NewNamed\(|"type",\s*"veth"|netlink\.Veth\{|SetupVeth|netlink\.Bridge\{`)},
	{"switches a thread's network namespace (use netns.Do)",
		// internal/proc forks a child from a thread in the namespace; the bfd
		// library, standalone, opens its sockets in one.
		[]string{"internal/netns/", "internal/proc/", "bfd/transport.go"},
		regexp.MustCompile(`netns\.Set\(|unix\.Setns\(|ns\.WithNetNSPath\(`)},
	{"reads /proc (use internal/proc; internal/netns writes per-namespace sysctls)",
		[]string{"internal/proc/", "internal/netns/"},
		// Paths handed to a child program ("cat /proc/self/status") are its
		// business; a path named first (a constant or variable) is read later.
		regexp.MustCompile(`"/proc(/%d|/" *\+|")|(ReadFile|Open|Readlink|Stat|ReadDir)\("/proc|(=|:=)\s*"/proc/`)},
	{"sets up a Kubernetes scheme (use internal/scheme)",
		[]string{"internal/scheme/", "api/"},
		regexp.MustCompile(`AddToScheme\(`)},
	{"implements GoBGP's logger (use internal/gobgplog)",
		// speaker/bgp/logger.go only delegates to internal/gobgplog.
		[]string{"internal/gobgplog/", "speaker/bgp/logger.go"},
		regexp.MustCompile(`\) Fatal\(msg string`)},
}

func TestOneHelperPerConcern(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	scanned := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "vendor" || d.Name() == "testdata" || rel == "internal/archtest" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for _, c := range concerns {
			if home(rel, c.home) {
				continue
			}
			if loc := c.match.FindIndex(src); loc != nil {
				line := 1 + strings.Count(string(src[:loc[0]]), "\n")
				t.Errorf("%s:%d %s", rel, line, c.what)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 100 {
		t.Fatalf("scanned only %d Go files from %s", scanned, root)
	}
}

func home(rel string, homes []string) bool {
	for _, h := range homes {
		if rel == h || (strings.HasSuffix(h, "/") && strings.HasPrefix(rel, h)) {
			return true
		}
	}
	return false
}

func TestConcernPatterns(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want string // the concern's start, "" for none
	}{
		{`exec.Command("ip", "netns", "add", name)`, "creates network"},
		{`run("ip", "link", "add", a, "type", "veth", "peer", "name", b)`, "creates network"},
		{`exec.Command("ip", "netns", "exec", ns, bin)`, ""},
		{`if err := netns.Set(target); err != nil {`, "switches"},
		{`ns.WithNetNSPath(filepath.Join("/var/run/netns", name), func(ns.NetNS) error {`, "switches"},
		{`os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))`, "reads /proc"},
		{`os.ReadDir("/proc")`, "reads /proc"},
		{`os.ReadFile("/proc/self/status")`, "reads /proc"},
		{`filepath.Join("/proc", pid, "stat")`, "reads /proc"},
		{`os.Readlink("/proc/" + pid + "/ns/net")`, "reads /proc"},
		{`exec.Command(cat, "/proc/self/status")`, ""},
		{`const portRange = "/proc/sys/net/ipv4/ip_local_port_range"`, "reads /proc"},
		{`path := "/proc/self/mountinfo"`, "reads /proc"},
		{`&fs.PathError{Op: "open", Path: "/proc/42/stat"}`, ""},
		{`"/procedure"`, ""},
		{`clientgoscheme.AddToScheme(s)`, "sets up"},
		{`func (a *adapter) Fatal(msg string, f log.Fields) {}`, "implements"},
	} {
		got := ""
		for _, c := range concerns {
			if c.match.MatchString(tc.src) {
				got = c.what
			}
		}
		if !strings.HasPrefix(got, tc.want) || (tc.want == "" && got != "") {
			t.Errorf("%s: matched %q, want %q", tc.src, got, tc.want)
		}
	}
}
