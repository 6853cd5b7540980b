package deploy

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
	"github.com/ecmplb/ecmplb/internal/nsforward"
	"github.com/ecmplb/ecmplb/internal/proc"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

// saKubeconfig writes a kubeconfig that authenticates as a ServiceAccount of
// metallb-system, with a token from the TokenRequest API.
func saKubeconfig(t *testing.T, env *testenv.Env, cs kubernetes.Interface, sa string) string {
	t.Helper()
	tr, err := cs.CoreV1().ServiceAccounts("metallb-system").CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", sa, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: env.URL, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBinary builds a command of ours and runs it until the test ends (or
// the caller stops it); its output goes to the process's log file.
func startBinary(t *testing.T, pkg string, args ...string) *proc.Process {
	t.Helper()
	return startBinaryIn(t, "", pkg, args...)
}

// startBinaryIn is startBinary in network namespace ns ("": this one).
func startBinaryIn(t *testing.T, ns, pkg string, args ...string) *proc.Process {
	t.Helper()
	root, _ := testenv.RepoRoot()
	dir := t.TempDir()
	bin := filepath.Join(dir, filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	p, err := proc.Start(filepath.Base(pkg), proc.Options{LogPath: filepath.Join(dir, "log"), NetNS: ns}, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	return p
}

func forbiddenLines(path string) []string {
	data, _ := os.ReadFile(path)
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "forbidden") || strings.Contains(line, "Forbidden") {
			out = append(out, line)
		}
	}
	return out
}

// Who the two components are to the apiserver.
const (
	controllerUser = "system:serviceaccount:metallb-system:ecmplb-controller"
	speakerUser    = "system:serviceaccount:metallb-system:ecmplb-speaker"
)

// auditPolicy records, at Metadata level, every request of the two
// ServiceAccounts and nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  users: ["` + controllerUser + `", "` + speakerUser + `"]
- level: None
`

// The RBAC in ecmplb.yaml is exactly what the real controller and speaker
// use. With the apiserver enforcing RBAC and auditing every request of the
// two ServiceAccounts, both run on their tokens through allocation, status
// writes, a Service's deletion and their own shutdown; then every request
// must have been allowed, and every verb granted must have been used.
func TestRBACIsLeast(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	// The speaker runs in a network namespace of its own, with an Ethernet
	// interface (l2, a veth to a second namespace) for layer 2 mode to
	// answer on: its ARP stays there. The apiserver is forwarded into it.
	lab := netnstest.RootLab(t)
	spkNS, peerNS := netnstest.NS(t, lab, "rbac"), netnstest.NS(t, lab, "rbacl2")
	if err := lab.Link(spkNS, "l2", []string{"192.0.2.1/24"}, peerNS, "eth0", []string{"192.0.2.2/24"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	policy, auditLog := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	env := testenv.Start(t, testenv.Options{Authorization: "RBAC", ExtraAPIServerArgs: []string{
		"--audit-policy-file=" + policy, "--audit-log-path=" + auditLog, "--audit-log-format=json", "--audit-log-mode=blocking"}})
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	// A fresh install is one apply of the whole file, webhooks included
	// (failurePolicy Fail blocks none of its objects).
	if out, err := kubectl(t, env, "", "apply", "-f", "ecmplb.yaml"); err != nil {
		t.Fatalf("kubectl apply -f ecmplb.yaml: %v\n%s", err, out)
	}
	// The webhooks fail closed while no controller serves them...
	whArgs := serveWebhooks(t, env)
	if out, err := kubectl(t, env, probePool, "apply", "--dry-run=server", "-f", "-"); err == nil {
		t.Fatalf("a metallb.io object was admitted while no controller ran:\n%s", out)
	}
	// ...and admit the configuration once one does (leader or not: the
	// webhooks run on every replica).
	ctrl := startBinary(t, "./controller", append([]string{"--kubeconfig", saKubeconfig(t, env, cs, "ecmplb-controller"),
		"--namespace", "metallb-system", "--metrics-addr", "0", "--health-addr", "0", "--leader-elect=true",
		"--deployment-name", "ecmplb-controller"}, whArgs...)...)
	waitWebhooks(t, env, func() string { return ctrl.Tail(50) })
	// A peer naming a password Secret is checked against it (server-side
	// dry run: the speaker never sees this peer).
	const authPeer = `apiVersion: v1
kind: Secret
metadata: {name: bgp-auth, namespace: metallb-system}
type: kubernetes.io/basic-auth
stringData: {password: s3cret}
`
	if out, err := kubectl(t, env, authPeer, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply Secret: %v\n%s", err, out)
	}
	if out, err := kubectl(t, env, `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: auth, namespace: metallb-system}
spec: {myASN: 65100, peerASN: 65000, peerAddress: 127.0.0.1, peerPort: 2, passwordSecret: {name: bgp-auth}}
`, "apply", "--dry-run=server", "-f", "-"); err != nil {
		t.Fatalf("dry-run peer with a password Secret: %v\n%s", err, out)
	}
	// A node for the speaker, and the configuration. The peer is a closed
	// port on loopback: nothing leaves the machine, and the speaker still
	// decides and records what it announces.
	node, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	config := `apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: loop, namespace: metallb-system}
spec: {myASN: 65100, peerASN: 65000, peerAddress: 127.0.0.1, peerPort: 1}
`
	for _, f := range []string{"examples/01-pool.yaml", "examples/03-advertisement.yaml", "examples/04-service.yaml"} {
		if out, err := kubectl(t, env, "", "apply", "-f", f); err != nil {
			t.Fatalf("apply %s: %v\n%s", f, err, out)
		}
	}
	if out, err := kubectl(t, env, config, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply peer: %v\n%s", err, out)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.2"}, NodeName: ptr.To("node1"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](8443)}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Layer 2 mode for the same pool, on the speaker's l2 interface.
	if out, err := kubectl(t, env, `apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: l2, namespace: metallb-system}
spec: {ipAddressPools: [prod-pool], interfaces: [l2]}
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply L2Advertisement: %v\n%s", err, out)
	}
	u, err := url.Parse(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := nsforward.Start(spkNS, u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fwd.Close() })

	// The arguments of the manifests, but for addresses and kubeconfigs
	// (the controller's started above).
	spk := startBinaryIn(t, spkNS, "./speaker", "--kubeconfig", saKubeconfig(t, env, cs, "ecmplb-speaker"),
		"--node-name", "node1", "--namespace", "metallb-system", "--metrics-addr", "")
	// fatalf ends the test with what RBAC refused so far, the likely cause.
	fatalf := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if _, denied, err := readAudit(auditLog); err == nil && len(denied) > 0 {
			msg += "\nrefused by RBAC:\n" + strings.Join(denied, "\n")
		}
		t.Fatal(msg)
	}

	var ip string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
			return false, nil
		}
		ip = svc.Status.LoadBalancer.Ingress[0].IP
		return true, nil
	})
	if err != nil {
		fatalf("controller on its ServiceAccount allocated no IP: %v\n%s", err, ctrl.Tail(50))
	}
	dyn := dynamic.NewForConfigOrDie(env.Config)
	gvr := schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "servicebgpstatuses"}
	l2gvr := schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "servicel2statuses"}
	count := func(gvr schema.GroupVersionResource) int {
		l, err := dyn.Resource(gvr).Namespace("metallb-system").List(ctx, metav1.ListOptions{})
		if err != nil {
			return -1
		}
		return len(l.Items)
	}
	// statusCount counts the status objects of both modes: one each while
	// the Service is announced.
	statusCount := func() int {
		b, l := count(gvr), count(l2gvr)
		if b < 0 || l < 0 {
			return -1
		}
		if b != l {
			return -2 // one mode ahead of the other: not settled yet
		}
		return b
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		return statusCount() > 0, nil
	})
	if err != nil {
		fatalf("speaker on its ServiceAccount wrote no ServiceBGPStatus and ServiceL2Status for %s: %v\n%s", ip, err, spk.Tail(50))
	}
	// A second peer (another closed port) changes the ServiceBGPStatus's
	// peers: a patch of the object, which carries its status (the CRD has
	// no status subresource).
	if out, err := kubectl(t, env, `apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: loop2, namespace: metallb-system}
spec: {myASN: 65100, peerASN: 65000, peerAddress: 127.0.0.1, peerPort: 3}
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply second peer: %v\n%s", err, out)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		l, err := dyn.Resource(gvr).Namespace("metallb-system").List(ctx, metav1.ListOptions{})
		if err != nil || len(l.Items) != 1 {
			return false, nil
		}
		peers, _, _ := unstructured.NestedStringSlice(l.Items[0].Object, "status", "peers")
		return len(peers) == 2, nil
	})
	if err != nil {
		fatalf("the ServiceBGPStatus did not list the second peer: %v\n%s", err, spk.Tail(50))
	}
	// The same events again, which the recorders send as patches of the
	// first: the Service's endpoint leaves the node and comes back (the
	// speaker withdraws, deletes its status object, announces again), and the
	// Service stops and starts being a LoadBalancer (the controller releases
	// and assigns the IP again).
	if err := cs.DiscoveryV1().EndpointSlices("default").Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		return statusCount() == 0, nil
	}); err != nil {
		fatalf("speaker did not delete its ServiceBGPStatus and ServiceL2Status when the endpoint left: %v\n%s", err, spk.Tail(50))
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		return statusCount() > 0, nil
	}); err != nil {
		fatalf("speaker did not announce again: %v\n%s", err, spk.Tail(50))
	}
	for _, typ := range []string{"ClusterIP", "LoadBalancer"} {
		patch := fmt.Sprintf(`{"spec":{"type":%q}}`, typ)
		if _, err := cs.CoreV1().Services("default").Patch(ctx, "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			svc, err := cs.CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
			return err == nil && (len(svc.Status.LoadBalancer.Ingress) > 0) == (typ == "LoadBalancer"), nil
		}); err != nil {
			fatalf("controller did not follow the Service to type %s: %v\n%s", typ, err, ctrl.Tail(50))
		}
	}
	// The Service goes away: the controller releases its IP, the speaker
	// deletes its status object.
	if err := cs.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) {
		return statusCount() == 0, nil
	})
	if err != nil {
		fatalf("speaker did not delete its ServiceBGPStatus and ServiceL2Status: %v\n%s", err, spk.Tail(50))
	}
	// Both ConfigurationStates were created with their owners: the
	// controller's Deployment, the speaker's Node.
	deploy, err := cs.AppsV1().Deployments("metallb-system").Get(ctx, "ecmplb-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	states := schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "configurationstates"}
	for name, want := range map[string]metav1.OwnerReference{
		"controller":    {APIVersion: "apps/v1", Kind: "Deployment", Name: "ecmplb-controller", UID: deploy.UID},
		"speaker-node1": {APIVersion: "v1", Kind: "Node", Name: "node1", UID: node.UID},
	} {
		var got []metav1.OwnerReference
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			o, err := dyn.Resource(states).Namespace("metallb-system").Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			got = o.GetOwnerReferences()
			return true, nil
		})
		if err != nil {
			fatalf("no ConfigurationState %s: %v\n%s\n%s", name, err, ctrl.Tail(30), spk.Tail(30))
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("ConfigurationState %s owners %+v, want %+v", name, got, want)
		}
	}
	// Let both run a little longer (the lease is renewed every 2 s), then
	// stop them: the
	// controller releases its lease on the way out.
	time.Sleep(2 * time.Second)
	ctrl.Stop(10 * time.Second)
	spk.Stop(10 * time.Second)

	for name, p := range map[string]*proc.Process{"controller": ctrl, "speaker": spk} {
		if lines := forbiddenLines(p.LogPath); len(lines) > 0 {
			t.Errorf("%s was refused by RBAC:\n%s", name, strings.Join(lines, "\n"))
		}
	}
	used, denied, err := readAudit(auditLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range denied {
		t.Errorf("refused by RBAC: %s", d)
	}
	grants, err := grantsOf("ecmplb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for user, gs := range grants {
		for _, g := range gs {
			if !used[user].covers(g) {
				t.Errorf("%s grants %q on %s to %s, which never used it", g.role, g.verb, g.resourceString(), user)
			}
		}
	}
	for user, u := range used {
		t.Logf("%s used: %s", user, strings.Join(u.list(), ", "))
	}
}
