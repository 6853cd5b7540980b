package deploy

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ecmplb/ecmplb/internal/endpoint"
)

// podSpecs returns the pod templates of the Deployments and DaemonSets in a
// manifest, by kind/name.
func podSpecs(t *testing.T, path string) map[string]corev1.PodSpec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]corev1.PodSpec{}
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch obj["kind"] {
		case "DaemonSet":
			var ds appsv1.DaemonSet
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &ds); err != nil {
				t.Fatal(err)
			}
			out["DaemonSet/"+ds.Name] = ds.Spec.Template.Spec
		case "Deployment":
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &d); err != nil {
				t.Fatal(err)
			}
			out["Deployment/"+d.Name] = d.Spec.Template.Spec
		}
	}
	return out
}

// flagValue returns the value of --name=value in args ("" and false when absent).
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// The speaker shares the host's network namespace: its metrics listen on one
// address, not all, and nothing in the manifests serves pprof off loopback.
func TestManifestEndpoints(t *testing.T) {
	specs := podSpecs(t, "ecmplb.yaml")
	spk, ok := specs["DaemonSet/ecmplb-speaker"]
	if !ok || len(spk.Containers) == 0 {
		t.Fatal("no speaker DaemonSet")
	}
	if !spk.HostNetwork {
		t.Error("the speaker no longer runs with hostNetwork: revisit its metrics address")
	}
	addr, ok := flagValue(spk.Containers[0].Args, "metrics-addr")
	if !ok {
		t.Fatal("the speaker's --metrics-addr is not set: the binary's default would apply")
	}
	host, _, err := net.SplitHostPort(endpoint.ListenAddr(addr))
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		t.Errorf("speaker --metrics-addr=%s listens on every address of the node (%v)", addr, err)
	}
	if host == "$(HOST_IP)" {
		var found bool
		for _, e := range spk.Containers[0].Env {
			found = found || e.Name == "HOST_IP" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
				e.ValueFrom.FieldRef.FieldPath == "status.hostIP"
		}
		if !found {
			t.Error("speaker --metrics-addr uses $(HOST_IP), but HOST_IP is not status.hostIP")
		}
	}
	for name, spec := range specs {
		for _, c := range spec.Containers {
			if v, ok := flagValue(c.Args, "pprof-addr"); ok && v != "" {
				if err := endpoint.CheckLoopback("--pprof-addr", v); err != nil {
					t.Errorf("%s container %s: %v", name, c.Name, err)
				}
			}
		}
	}
}
