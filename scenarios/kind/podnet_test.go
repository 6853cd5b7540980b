//go:build kind

package kind_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ecmplb/ecmplb/kindconfig"
	"github.com/ecmplb/ecmplb/kindconfig/ociimage"
)

const testImage = "ecmplb.local/busybox:test"

// TestPodNetwork creates a 1+2 node cluster and checks what the kind backend
// builds on: a locally built image loads into the nodes, pods on different
// workers reach each other over the pod routes, and a Service name resolves
// through CoreDNS and reaches its pod through kube-proxy.
func TestPodNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	c, err := kindconfig.New(kindconfig.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("ECMPLB_KIND_KEEP") != "" {
			t.Logf("ECMPLB_KIND_KEEP: keeping cluster %s (network %s)", c.Name(), c.Network())
			return
		}
		if err := c.Delete(); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	if err := c.Create(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitNodesReady(ctx, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	// CoreDNS restarts once Create has taken its upstream away.
	if err := c.WaitPodsReady(ctx, "kube-system", 3*time.Minute); err != nil {
		t.Fatal(err)
	}

	archive := busyboxImage(t)
	if err := c.LoadImage(ctx, archive); err != nil {
		t.Fatal(err)
	}

	kube := c.Client()
	pods := kube.CoreV1().Pods("default")
	workers := []string{c.Name() + "-worker", c.Name() + "-worker2"}
	for i, node := range workers {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web%d", i), Labels: map[string]string{"app": fmt.Sprintf("web%d", i)}},
			Spec: corev1.PodSpec{
				NodeName: node,
				Containers: []corev1.Container{{
					Name:            "web",
					Image:           testImage,
					ImagePullPolicy: corev1.PullNever,
					Command:         []string{"/bin/sh", "-c", fmt.Sprintf("mkdir -p /www && echo hello-from-%s >/www/index.html && exec httpd -f -p 8080 -h /www", node)},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
						TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)},
					}, PeriodSeconds: 1},
				}},
			},
		}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web1"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web1"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := kube.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitPodsReady(ctx, "default", 2*time.Minute); err != nil {
		out, _ := c.Kubectl(ctx, "describe", "pods")
		t.Fatalf("pods ready: %v\n%s", err, out)
	}
	p1, err := pods.Get(ctx, "web1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	svcIP := ""
	if s, err := kube.CoreV1().Services("default").Get(ctx, "web1", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else {
		svcIP = s.Spec.ClusterIP
	}
	want := "hello-from-" + workers[1]
	// Busybox's wget crashes (Debian 1.35 static build), so HTTP is spoken
	// through nc.
	get := func(host, port string) (string, error) {
		return c.Kubectl(ctx, "exec", "web0", "--", "sh", "-c",
			fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 %s %s`, host, port))
	}
	// Pod to pod across nodes, by address.
	if got, err := get(p1.Status.PodIP, "8080"); err != nil || !strings.Contains(got, want) {
		t.Errorf("web0 -> web1 (%s): %q, %v", p1.Status.PodIP, got, err)
	}
	// CoreDNS answers for the Service.
	if got, err := c.Kubectl(ctx, "exec", "web0", "--", "nslookup", "web1.default.svc.cluster.local"); err != nil || !strings.Contains(got, svcIP) {
		t.Errorf("nslookup web1: %q, %v (want %s)", got, err, svcIP)
	}
	// Pod to Service: kube-proxy's DNAT, by address and by name.
	for _, host := range []string{svcIP, "web1.default.svc.cluster.local"} {
		if got, err := get(host, "80"); err != nil || !strings.Contains(got, want) {
			t.Errorf("web0 -> service web1 (%s): %q, %v", host, got, err)
		}
	}
}

// busyboxImage writes a one-binary image (Debian's busybox-static) and
// returns its path.
func busyboxImage(t *testing.T) string {
	t.Helper()
	const busybox = "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		t.Fatalf("%s: %v (apt-get install busybox-static)", busybox, err)
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "httpd", "wget", "mkdir", "echo", "nslookup", "ping", "sleep", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "busybox.tar")
	if err := ociimage.WriteFile(out, ociimage.Spec{Tags: []string{testImage}, Root: root, Entrypoint: []string{"/bin/sh"}}); err != nil {
		t.Fatal(err)
	}
	return out
}
