package deploy

import (
	"context"
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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"

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

// startBinary builds a command of ours and runs it until the test ends; its
// output goes to the returned log file.
func startBinary(t *testing.T, pkg string, args ...string) string {
	t.Helper()
	root, _ := testenv.RepoRoot()
	dir := t.TempDir()
	bin := filepath.Join(dir, filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	p, err := proc.Start(filepath.Base(pkg), proc.Options{LogPath: filepath.Join(dir, "log")}, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	return p.LogPath
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

// The RBAC in ecmplb.yaml is enough for the real controller and speaker:
// with the apiserver enforcing RBAC and each running on its ServiceAccount's
// token, the controller allocates an IP and the speaker writes its
// ServiceBGPStatus, and neither is ever refused.
func TestRBACIsSufficient(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver")
	}
	env := testenv.Start(t, testenv.Options{Authorization: "RBAC"})
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(env.Config)
	if out, err := kubectl(t, env, "", "apply", "-f", "ecmplb.yaml"); err != nil {
		t.Fatalf("kubectl apply -f ecmplb.yaml: %v\n%s", err, out)
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
	_, err = cs.DiscoveryV1().EndpointSlices("default").Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.2"}, NodeName: ptr.To("node1"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports: []discoveryv1.EndpointPort{{Port: ptr.To[int32](8443)}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	ctrlLog := startBinary(t, "./controller", "--kubeconfig", saKubeconfig(t, env, cs, "ecmplb-controller"),
		"--namespace", "metallb-system", "--metrics-addr", "0", "--health-addr", "0", "--leader-elect=true")
	spkLog := startBinary(t, "./speaker", "--kubeconfig", saKubeconfig(t, env, cs, "ecmplb-speaker"),
		"--node-name", "node1", "--namespace", "metallb-system", "--metrics-addr", "")

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
		data, _ := os.ReadFile(ctrlLog)
		t.Fatalf("controller on its ServiceAccount allocated no IP: %v\n%s", err, data)
	}
	dyn := dynamic.NewForConfigOrDie(env.Config)
	gvr := schema.GroupVersionResource{Group: "metallb.io", Version: "v1beta1", Resource: "servicebgpstatuses"}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		l, err := dyn.Resource(gvr).Namespace("metallb-system").List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) > 0, nil
	})
	if err != nil {
		data, _ := os.ReadFile(spkLog)
		t.Fatalf("speaker on its ServiceAccount wrote no ServiceBGPStatus for %s: %v\n%s", ip, err, data)
	}
	// Let both run a little longer, then look for refusals.
	time.Sleep(2 * time.Second)
	for name, path := range map[string]string{"controller": ctrlLog, "speaker": spkLog} {
		if lines := forbiddenLines(path); len(lines) > 0 {
			t.Errorf("%s was refused by RBAC:\n%s", name, strings.Join(lines, "\n"))
		}
	}
}
