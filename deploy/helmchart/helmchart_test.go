package helmchart

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/ecmplb/ecmplb/deploy/images"
	"github.com/ecmplb/ecmplb/internal/testenv"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// objects decodes a multi-document manifest, keyed by kind/name.
func objects(t *testing.T, manifest string) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		out[u.GetKind()+"/"+u.GetName()] = u
	}
	return out
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	if u == nil {
		t.Fatal("object missing")
	}
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// nonDefault sets every value the chart offers to something else.
var nonDefault = map[string]any{
	"namespace": "lb", "createNamespace": false, "installCRDs": false, "logLevel": "debug",
	"image":            map[string]any{"registry": "registry.example.com/", "tag": "v9", "pullPolicy": "Always"},
	"imagePullSecrets": []any{map[string]any{"name": "pull"}},
	"controller": map[string]any{
		"replicas": 3, "metricsAddr": ":9100", "priorityClassName": "system-cluster-critical",
		"nodeSelector":        map[string]any{"role": "infra"},
		"tolerations":         []any{map[string]any{"key": "infra", "operator": "Exists"}},
		"resources":           map[string]any{"limits": map[string]any{"memory": "1Gi"}},
		"podDisruptionBudget": map[string]any{"enabled": false},
	},
	"speaker": map[string]any{
		"metricsAddr": "", "bfdEcho": true, "priorityClassName": "system-node-critical",
		"nodeSelector": map[string]any{"bgp": "yes"}, "tolerations": []any{}, "serviceStatus": false, "l2": false,
		"l2Heartbeat": map[string]any{"port": 7950, "interval": "200ms", "keySecret": "hb"},
	},
}

func TestLint(t *testing.T) {
	dir := filepath.Join(repoRoot(t), Dir)
	for name, vals := range map[string]map[string]any{"defaults": nil, "non-default": nonDefault} {
		if err := Lint(dir, vals); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// deploy/ecmplb.yaml is the default rendering, and the chart's CRDs are
// deploy/crds: neither can drift from the chart.
func TestPlainManifestsAreTheRendering(t *testing.T) {
	root := repoRoot(t)
	want, err := Manifests(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "deploy/ecmplb.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("deploy/ecmplb.yaml differs from the chart's default rendering: run make manifests")
	}
	crds, _ := filepath.Glob(filepath.Join(root, "deploy/crds/*.yaml"))
	copies, _ := filepath.Glob(filepath.Join(root, Dir, CRDDir, "*.yaml"))
	if len(crds) == 0 || len(crds) != len(copies) {
		t.Fatalf("%d CRDs in deploy/crds, %d in the chart: run make manifests", len(crds), len(copies))
	}
	for _, f := range crds {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(root, Dir, CRDDir, filepath.Base(f)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("the chart's copy of %s differs (%v): run make manifests", filepath.Base(f), err)
		}
	}
}

func TestDefaults(t *testing.T) {
	root := repoRoot(t)
	out, err := Render(filepath.Join(root, Dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, out)
	// Every CRD, as generated, kept on uninstall.
	crds, _ := filepath.Glob(filepath.Join(root, "deploy/crds/*.yaml"))
	for _, f := range crds {
		b, _ := os.ReadFile(f)
		want := objects(t, string(b))
		for k, w := range want {
			g := objs[k]
			if g == nil {
				t.Errorf("rendering lacks %s", k)
				continue
			}
			anns := g.GetAnnotations()
			if anns["helm.sh/resource-policy"] != "keep" {
				t.Errorf("%s is not kept on uninstall: %v", k, anns)
			}
			delete(anns, "helm.sh/resource-policy")
			g = g.DeepCopy()
			g.SetAnnotations(anns)
			if k == "CustomResourceDefinition/bgppeers.metallb.io" {
				// The one addition: conversion by the controller's webhook.
				conv, _, _ := unstructured.NestedMap(g.Object, "spec", "conversion")
				strategy, _, _ := unstructured.NestedString(conv, "strategy")
				svc, _, _ := unstructured.NestedMap(conv, "webhook", "clientConfig", "service")
				versions, _, _ := unstructured.NestedStringSlice(conv, "webhook", "conversionReviewVersions")
				if strategy != "Webhook" || svc["name"] != "ecmplb-webhook" || svc["path"] != "/convert" || !slices.Equal(versions, []string{"v1"}) {
					t.Errorf("%s: conversion %v", k, conv)
				}
				unstructured.RemoveNestedField(g.Object, "spec", "conversion")
			}
			if !reflect.DeepEqual(g.Object, w.Object) {
				t.Errorf("%s differs from %s", k, f)
			}
		}
	}
	if objs["Namespace/metallb-system"] == nil {
		t.Error("no namespace")
	}
	d := convert[appsv1.Deployment](t, objs["Deployment/ecmplb-controller"])
	if *d.Spec.Replicas != 2 || !slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--leader-elect=true") {
		t.Errorf("controller: replicas %d args %v", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Args)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ecmplb/controller:dev" || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("controller container %+v", c)
	}
	if !slices.Contains(c.Args, "--health-addr=:7473") || c.Ports[1].ContainerPort != 7473 {
		t.Errorf("controller probes do not match --health-addr: %v %v", c.Args, c.Ports)
	}
	if objs["PodDisruptionBudget/ecmplb-controller"] == nil {
		t.Error("no PodDisruptionBudget")
	}
	ds := convert[appsv1.DaemonSet](t, objs["DaemonSet/ecmplb-speaker"])
	ps := ds.Spec.Template.Spec
	sc := ps.Containers[0].SecurityContext
	// Layer 2 mode is on: the binary's cap_net_raw+ep needs privilege
	// escalation, bounded by NET_RAW, the only capability added.
	if !ps.HostNetwork || !*sc.AllowPrivilegeEscalation || !reflect.DeepEqual(sc.Capabilities.Add, []corev1.Capability{"NET_RAW"}) ||
		!reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("speaker: hostNetwork %v securityContext %+v", ps.HostNetwork, sc)
	}
	if *ps.SecurityContext.RunAsUser != images.UID || !*ps.SecurityContext.RunAsNonRoot {
		t.Errorf("speaker pod securityContext %+v", ps.SecurityContext)
	}
	if p := ps.Containers[0].LivenessProbe; p == nil || p.HTTPGet.Path != "/metrics" || p.HTTPGet.Port.StrVal != "metrics" {
		t.Errorf("speaker liveness probe %+v", p)
	}
	if slices.Contains(ps.Containers[0].Args, "--service-status=false") {
		t.Error("speaker writes no ServiceBGPStatus by default")
	}
	if p := ps.Containers[0].Ports[0]; p.Name != "l2-heartbeat" || p.ContainerPort != 7947 || p.Protocol != corev1.ProtocolUDP ||
		!slices.Contains(ps.Containers[0].Args, "--l2-heartbeat-port=7947") || len(ps.Volumes) != 0 {
		t.Errorf("speaker layer 2 heartbeat: ports %v args %v volumes %v", ps.Containers[0].Ports, ps.Containers[0].Args, ps.Volumes)
	}
}

// speaker.l2: off, no heartbeat port and no privilege escalation (without
// bfdEcho); on with a key Secret, the key mounted and named by the flag.
func TestL2Values(t *testing.T) {
	dir := filepath.Join(repoRoot(t), Dir)
	off := map[string]any{"speaker": map[string]any{"l2": false}}
	keyed := map[string]any{"speaker": map[string]any{"l2Heartbeat": map[string]any{"port": 7950, "interval": "200ms", "keySecret": "hb"}}}
	for name, vals := range map[string]map[string]any{"off": off, "keyed": keyed} {
		out, err := Render(dir, vals)
		if err != nil {
			t.Fatal(err)
		}
		ds := convert[appsv1.DaemonSet](t, objects(t, out)["DaemonSet/ecmplb-speaker"])
		ps := ds.Spec.Template.Spec
		c := ps.Containers[0]
		switch name {
		case "off":
			if *c.SecurityContext.AllowPrivilegeEscalation || !slices.Contains(c.Args, "--l2=false") || len(c.Ports) != 1 || c.Ports[0].Name != "metrics" {
				t.Errorf("l2 off: escalation %v args %v ports %v", *c.SecurityContext.AllowPrivilegeEscalation, c.Args, c.Ports)
			}
		case "keyed":
			want := []string{"--l2-heartbeat-port=7950", "--l2-heartbeat-interval=200ms", "--l2-heartbeat-key-file=/etc/ecmplb/l2-heartbeat/key",
				"--l2-lease-period=2s"}
			for _, a := range want {
				if !slices.Contains(c.Args, a) {
					t.Errorf("keyed: args %v lack %s", c.Args, a)
				}
			}
			if len(ps.Volumes) != 1 || ps.Volumes[0].Secret == nil || ps.Volumes[0].Secret.SecretName != "hb" ||
				len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/ecmplb/l2-heartbeat" || c.Ports[0].ContainerPort != 7950 {
				t.Errorf("keyed: volumes %+v mounts %+v ports %v", ps.Volumes, c.VolumeMounts, c.Ports)
			}
		}
	}
}

func TestValues(t *testing.T) {
	out, err := Render(filepath.Join(repoRoot(t), Dir), nonDefault)
	if err != nil {
		t.Fatal(err)
	}
	objs := objects(t, out)
	for k, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" || o.GetKind() == "Namespace" || o.GetKind() == "PodDisruptionBudget" {
			t.Errorf("%s rendered although switched off", k)
		}
		if ns := o.GetNamespace(); ns != "" && ns != "lb" {
			t.Errorf("%s in namespace %s, want lb", k, ns)
		}
	}
	for _, k := range []string{"RoleBinding/ecmplb-speaker", "ClusterRoleBinding/ecmplb-controller"} {
		subj, _, _ := unstructured.NestedSlice(objs[k].Object, "subjects")
		if len(subj) != 1 || subj[0].(map[string]any)["namespace"] != "lb" {
			t.Errorf("%s subjects %v", k, subj)
		}
	}
	d := convert[appsv1.Deployment](t, objs["Deployment/ecmplb-controller"])
	ps := d.Spec.Template.Spec
	c := ps.Containers[0]
	if *d.Spec.Replicas != 3 || c.Image != "registry.example.com/ecmplb/controller:v9" || c.ImagePullPolicy != "Always" ||
		ps.PriorityClassName != "system-cluster-critical" || ps.NodeSelector["role"] != "infra" || len(ps.Tolerations) != 1 ||
		c.Resources.Limits.Memory().String() != "1Gi" || ps.ImagePullSecrets[0].Name != "pull" {
		t.Errorf("controller %+v", d.Spec)
	}
	for _, a := range []string{"--namespace=lb", "--metrics-addr=:9100", "--log-level=debug"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("controller args %v lack %s", c.Args, a)
		}
	}
	if c.Ports[0].ContainerPort != 9100 {
		t.Errorf("controller ports %v", c.Ports)
	}
	ds := convert[appsv1.DaemonSet](t, objs["DaemonSet/ecmplb-speaker"])
	sp := ds.Spec.Template.Spec
	s := sp.Containers[0]
	if s.Image != "registry.example.com/ecmplb/speaker:v9" || sp.PriorityClassName != "system-node-critical" ||
		sp.NodeSelector["bgp"] != "yes" || len(sp.Tolerations) != 0 || !*s.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("speaker %+v", sp)
	}
	if len(s.Ports) != 0 || s.LivenessProbe != nil || !slices.Contains(s.Args, "--metrics-addr=") {
		t.Errorf("speaker with metrics off: ports %v probe %v args %v", s.Ports, s.LivenessProbe, s.Args)
	}
	if !slices.Contains(s.Args, "--service-status=false") || !slices.Contains(s.Args, "--l2=false") || len(sp.Volumes) != 0 {
		t.Errorf("speaker with serviceStatus and l2 false: args %v volumes %v", s.Args, sp.Volumes)
	}
}

// webhooks.enabled=false renders no webhook objects, no conversion webhook,
// no webhook RBAC, and turns the server off; with installCRDs=false the
// controller leaves the (MetalLB's) bgppeers CRD alone.
func TestWebhookValues(t *testing.T) {
	dir := filepath.Join(repoRoot(t), Dir)
	for _, tc := range []struct {
		name                    string
		values                  map[string]any
		webhooks, crdConversion bool
	}{
		{"defaults", nil, true, true},
		{"disabled", map[string]any{"webhooks": map[string]any{"enabled": false}}, false, false},
		{"MetalLB's CRDs", map[string]any{"installCRDs": false}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(dir, tc.values)
			if err != nil {
				t.Fatal(err)
			}
			objs := objects(t, out)
			for _, k := range []string{"ValidatingWebhookConfiguration/ecmplb-webhook", "Secret/ecmplb-webhook-cert", "Service/ecmplb-webhook"} {
				if (objs[k] != nil) != tc.webhooks {
					t.Errorf("%s rendered: %v, want %v", k, objs[k] != nil, tc.webhooks)
				}
			}
			if crd := objs["CustomResourceDefinition/bgppeers.metallb.io"]; crd != nil {
				_, has, _ := unstructured.NestedMap(crd.Object, "spec", "conversion")
				if has != tc.crdConversion {
					t.Errorf("bgppeers conversion rendered: %v, want %v", has, tc.crdConversion)
				}
			}
			d := convert[appsv1.Deployment](t, objs["Deployment/ecmplb-controller"])
			args := d.Spec.Template.Spec.Containers[0].Args
			wantAddr := "--webhook-addr=0"
			if tc.webhooks {
				wantAddr = "--webhook-addr=:9443"
			}
			if !slices.Contains(args, wantAddr) {
				t.Errorf("args %v lack %s", args, wantAddr)
			}
			if tc.webhooks && slices.Contains(args, "--webhook-conversion-crd=bgppeers.metallb.io") != tc.crdConversion {
				t.Errorf("args %v: conversion CRD flag, want %v", args, tc.crdConversion)
			}
			rbac := objs["ClusterRole/ecmplb-controller"]
			rules, _, _ := unstructured.NestedSlice(rbac.Object, "rules")
			var crdRule, vwcRule bool
			for _, r := range rules {
				res, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources")
				crdRule = crdRule || slices.Contains(res, "customresourcedefinitions")
				vwcRule = vwcRule || slices.Contains(res, "validatingwebhookconfigurations")
			}
			if vwcRule != tc.webhooks || crdRule != tc.crdConversion {
				t.Errorf("ClusterRole: webhook configuration rule %v, CRD rule %v", vwcRule, crdRule)
			}
		})
	}
}
