package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/speaker/internal/speakerlab"
)

// requireRootLab is set where the non-root lab must run (CI runs as root): a
// missing privilege then fails the test instead of skipping it.
const requireRootLab = "ECMPLB_REQUIRE_ROOTLAB"

// speakerSecurityContext returns the securityContext of the speaker container
// in deploy/ecmplb.yaml, with the user settings of the pod's filled in.
func speakerSecurityContext(t *testing.T) *corev1.SecurityContext {
	t.Helper()
	f, err := os.Open("../../deploy/ecmplb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("deploy/ecmplb.yaml: %v", err)
		}
		if obj["kind"] != "DaemonSet" {
			continue
		}
		var ds appsv1.DaemonSet
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &ds); err != nil {
			t.Fatal(err)
		}
		pod := ds.Spec.Template.Spec.SecurityContext
		for _, c := range ds.Spec.Template.Spec.Containers {
			if c.Name != "speaker" || c.SecurityContext == nil {
				continue
			}
			// The container's settings win over the pod's.
			sc := c.SecurityContext
			if pod != nil {
				if sc.RunAsUser == nil {
					sc.RunAsUser = pod.RunAsUser
				}
				if sc.RunAsGroup == nil {
					sc.RunAsGroup = pod.RunAsGroup
				}
				if sc.RunAsNonRoot == nil {
					sc.RunAsNonRoot = pod.RunAsNonRoot
				}
			}
			return sc
		}
	}
	t.Fatal("deploy/ecmplb.yaml: no DaemonSet with a speaker container and a securityContext")
	return nil
}

var capNumbers = map[corev1.Capability]uintptr{"NET_RAW": unix.CAP_NET_RAW, "NET_ADMIN": unix.CAP_NET_ADMIN,
	"NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, "SYS_ADMIN": unix.CAP_SYS_ADMIN}

// The manifest runs the speaker as a non-root user with no capability but
// NET_RAW (layer 2 mode's ARP/NDP sockets, the BFD echo function's packet
// socket). The real binary, run
// that way inside a network namespace, establishes a BGP session with TCP
// MD5 and announces a Service: once with NET_RAW as an
// ambient capability (what a runtime that passes added capabilities to a
// non-root process gives), once with no capability at all (what Kubernetes
// gives a non-root container today: kubernetes/kubernetes#56374).
func TestSpeakerRunsAsManifestUser(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	if os.Geteuid() != 0 {
		if os.Getenv(requireRootLab) != "" {
			t.Fatalf("%s is set but the test does not run as root", requireRootLab)
		}
		t.Skip("needs root for network namespaces and to change user")
	}
	sc := speakerSecurityContext(t)
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Fatalf("the speaker's securityContext does not run it as a non-root user: %+v", sc)
	}
	// Privilege escalation is allowed for layer 2 mode (speaker.l2): the
	// image's binary carries cap_net_raw+ep, which no_new_privs would drop.
	// What it can gain is bounded by the capabilities below: NET_RAW only.
	if sc.AllowPrivilegeEscalation == nil {
		t.Error("the speaker's securityContext leaves allowPrivilegeEscalation unset")
	}
	if sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("the speaker's securityContext does not drop ALL capabilities: %+v", sc.Capabilities)
	}
	uid := uint32(*sc.RunAsUser)
	gid := uid
	if sc.RunAsGroup != nil {
		gid = uint32(*sc.RunAsGroup)
	}
	var added []uintptr
	var addedMask uint64
	for _, c := range sc.Capabilities.Add {
		n, ok := capNumbers[c]
		if !ok {
			t.Fatalf("capability %s: unknown to this test", c)
		}
		added = append(added, n)
		addedMask |= 1 << n
	}
	if addedMask != 1<<unix.CAP_NET_RAW {
		t.Errorf("the speaker's capabilities are %v, want NET_RAW only", sc.Capabilities.Add)
	}

	// The binary and its kubeconfig, readable by the speaker's user only.
	dir, err := os.MkdirTemp("", "ecmplb-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "ecmplb-speaker")
	build := exec.Command("go", "build", "-o", bin, "./speaker")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./speaker: %v\n%s", err, out)
	}

	env := testenv.Start(t, testenv.Options{Namespaces: []string{"metallb-system", "default"}})
	kc, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(kubeconfig, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	// The session uses TCP MD5, whose key is a socket option needing no
	// capability. The test router's GoBGP listener must be plain TCP for it:
	// Go listens with MPTCP by default, and MPTCP sockets take no MD5 key
	// (the speaker only dials, which Go does with plain TCP).
	t.Setenv("GODEBUG", "multipathtcp=0")
	lab, err := speakerlab.Start(env, speakerlab.Options{Password: "md5-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	ctx := context.Background()
	if err := lab.CreateNode(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := lab.BasicConfig(ctx); err != nil {
		t.Fatal(err)
	}
	const ip = "203.0.113.5"
	if err := lab.CreateService(ctx, "default", "web", ip, false); err != nil {
		t.Fatal(err)
	}
	if err := lab.CreateEndpoints(ctx, "default", "web", true); err != nil {
		t.Fatal(err)
	}
	r := lab.Routers[0]

	for _, tc := range []struct {
		name string
		caps []uintptr
		mask uint64
	}{
		{"NET_RAW ambient", added, addedMask},
		{"no capabilities", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := proc.Start("speaker", proc.Options{LogPath: filepath.Join(t.TempDir(), "speaker.log"), NetNS: lab.SpeakerNS,
				Credential: &syscall.Credential{Uid: uid, Gid: gid}, AmbientCaps: tc.caps},
				bin, "--kubeconfig", kubeconfig, "--node-name", speakerlab.NodeName, "--namespace", speakerlab.Namespace,
				"--metrics-addr", "127.0.0.1:7472", "--log-level", "debug")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				p.Stop(10 * time.Second)
				if t.Failed() {
					t.Logf("speaker log:\n%s", p.Tail(80))
					t.Logf("connections to the apiserver:\n%s", strings.Join(lab.ForwarderLog(), "\n"))
				}
			})
			// What the process runs as.
			eventually(t, "the speaker's credentials", func() bool {
				st, err := proc.ReadStatus(p.PID())
				return err == nil && strings.HasPrefix(st["Uid"], strconv.Itoa(int(uid))+"\t")
			})
			st, _ := proc.ReadStatus(p.PID())
			if want := fmt.Sprintf("%016x", tc.mask); st["CapEff"] != want {
				t.Fatalf("speaker's capabilities %q, want %q", st["CapEff"], want)
			}

			if pids, err := proc.InNetNS(lab.SpeakerNS); err != nil || !slices.Contains(pids, p.PID()) {
				t.Fatalf("speaker (pid %d) is not in network namespace %s (there: %v, %v)", p.PID(), lab.SpeakerNS, pids, err)
			}
			if err := lab.WaitSessions(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			// The route comes from the Service and configuration it read from
			// the API server.
			waitRoute(t, r, ip+"/32", true, "65000:100")
			if exited, err := p.Exited(); exited {
				t.Fatalf("speaker exited: %v", err)
			}
		})
	}
}
