package kindbackend

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/ecmplb/ecmplb/scenarios/backend"
)

func TestWorkersInKindOrder(t *testing.T) {
	names := []string{"elb-1-worker10", "elb-1-control-plane", "elb-1-worker2", "elb-1-worker", "elb-2-worker", "elb-1-workerx"}
	got := Workers("elb-1", names)
	want := []string{"elb-1-worker", "elb-1-worker2", "elb-1-worker10"}
	if !slices.Equal(got, want) {
		t.Fatalf("Workers = %v, want %v", got, want)
	}
}

func TestEndpointConditionsToPodStates(t *testing.T) {
	for _, tc := range []struct {
		name string
		ep   backend.Endpoint
		want podState
		err  bool
	}{
		{"ready", backend.Endpoint{Ready: true, Serving: true}, podState{probeOK: true}, false},
		{"not ready", backend.Endpoint{}, podState{}, false},
		{"serving, terminating", backend.Endpoint{Serving: true, Terminating: true}, podState{terminating: true, probeOK: true}, false},
		{"terminating, not serving", backend.Endpoint{Terminating: true}, podState{terminating: true}, false},
		{"ready and terminating", backend.Endpoint{Ready: true, Terminating: true}, podState{}, true},
		{"serving only", backend.Endpoint{Serving: true}, podState{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wanted(tc.ep)
			if (err != nil) != tc.err || (err == nil && got != tc.want) {
				t.Fatalf("wanted(%+v) = %v, %v; want %v, error %v", tc.ep, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestEchoPodServesTheTargetPortsAndShowsItsState(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{
				{Port: 443, TargetPort: intstr.FromInt32(8443), Protocol: corev1.ProtocolTCP},
				{Port: 53, Protocol: corev1.ProtocolUDP},
				{Port: 9000, Protocol: corev1.ProtocolTCP},
			},
		},
	}
	for _, ready := range []bool{true, false} {
		p, err := echoPod(svc, "node1", "elb-1-worker", ready)
		if err != nil {
			t.Fatal(err)
		}
		c := p.Spec.Containers[0]
		if want := []string{"--http-addr=:8443", "--tcp-addr=:9000"}; !slices.Equal(c.Args, want) {
			t.Errorf("args %v, want %v", c.Args, want)
		}
		if p.Name != "web-node1" || p.Spec.NodeName != "elb-1-worker" || p.Labels["app"] != "web" || p.Labels[echoLabel] != "web" {
			t.Errorf("pod %s on %s, labels %v", p.Name, p.Spec.NodeName, p.Labels)
		}
		if got := stateOf(p); got != (podState{probeOK: ready}) {
			t.Errorf("ready %v: state %v", ready, got)
		}
		p.DeletionTimestamp = &metav1.Time{}
		if got := stateOf(p); got != (podState{terminating: true, probeOK: ready}) {
			t.Errorf("ready %v, deleted: state %v", ready, got)
		}
	}
	svc.Spec.Selector = nil
	if _, err := echoPod(svc, "node1", "elb-1-worker", true); err == nil {
		t.Error("a Service without a selector got an echo pod")
	}
}

func TestMetricValues(t *testing.T) {
	page := []byte("# HELP go_goroutines x\ngo_goroutines 42\ngo_memstats_heap_inuse_bytes 1.5e+06\nother{a=\"b\"} 1\n")
	m, err := metricValues(page, "go_goroutines", "go_memstats_heap_inuse_bytes")
	if err != nil || m["go_goroutines"] != 42 || m["go_memstats_heap_inuse_bytes"] != 1.5e6 {
		t.Fatalf("%v, %v", m, err)
	}
	if _, err := metricValues(page, "missing"); err == nil {
		t.Fatal("a missing metric was no error")
	}
}

// Only an unreachable webhook is retried; a verdict on the object is not.
func TestWebhookDown(t *testing.T) {
	for _, tt := range []struct {
		out  string
		down bool
	}{
		{`Error from server (InternalError): Internal error occurred: failed calling webhook "v1beta1.bfdprofiles.validate.ecmplb.io": failed to call webhook: Post "https://ecmplb-webhook.metallb-system.svc:443/validate": dial tcp 10.96.128.184:443: connect: connection refused`, true},
		{`Error from server: conversion webhook for metallb.io/v1beta2, Kind=BGPPeer failed: Post "https://ecmplb-webhook.metallb-system.svc:443/convert": no endpoints available`, true},
		{`Error from server (Forbidden): admission webhook "v1beta1.ipaddresspools.validate.ecmplb.io" denied the request: IPAddressPool metallb-system/x: spec.addresses[0]: overlaps`, false},
		{`The IPAddressPool "typo" is invalid: spec.addresses[0]: Invalid value`, false},
	} {
		if got := webhookDown(tt.out); got != tt.down {
			t.Errorf("webhookDown(%.60q) = %v, want %v", tt.out, got, tt.down)
		}
	}
}
