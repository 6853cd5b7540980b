package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// MetalLB writes metallb.io/ip-allocated-from-pool on every Service it
// allocates to; so does ecmplb unless told otherwise.
func TestPoolAnnotationDefault(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--pool-annotation=false"}, false},
		{[]string{"--pool-annotation"}, true},
	} {
		fs := flag.NewFlagSet("ecmplb-controller", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c config
		registerFlags(fs, &c)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if c.app.PoolAnnotation != tt.want {
			t.Errorf("args %q: PoolAnnotation = %v, want %v", tt.args, c.app.PoolAnnotation, tt.want)
		}
	}
}

// Webhooks are on by default on :9443; "0" turns them off (the lab and the
// tests that do not need them).
func TestWebhookFlags(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		addr     string
		dnsNames []string
	}{
		{nil, ":9443", nil},
		{[]string{"--webhook-addr=0"}, "0", nil},
		{[]string{"--webhook-addr=127.0.0.1:1", "--webhook-extra-dns-names=localhost, a.example"}, "127.0.0.1:1", []string{"localhost", "a.example"}},
	} {
		fs := flag.NewFlagSet("ecmplb-controller", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c config
		registerFlags(fs, &c)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		wh := c.app.Webhook
		if wh.Addr != tt.addr || strings.Join(wh.ExtraDNSNames, ",") != strings.Join(tt.dnsNames, ",") {
			t.Errorf("args %q: addr %q names %q, want %q %q", tt.args, wh.Addr, wh.ExtraDNSNames, tt.addr, tt.dnsNames)
		}
		if wh.SecretName != "ecmplb-webhook-cert" || wh.ConversionCRD != "bgppeers.metallb.io" || wh.ValidatingWebhookConfiguration != "ecmplb-webhook" {
			t.Errorf("args %q: names %+v", tt.args, wh)
		}
	}
}

// No owner for the ConfigurationState unless the Deployment is named (the
// chart names it; a controller run outside one has none to name).
func TestDeploymentNameFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--deployment-name=ecmplb-controller"}, "ecmplb-controller"},
	} {
		fs := flag.NewFlagSet("ecmplb-controller", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c config
		registerFlags(fs, &c)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if c.app.DeploymentName != tt.want {
			t.Errorf("args %q: DeploymentName %q, want %q", tt.args, c.app.DeploymentName, tt.want)
		}
	}
}

// The controller collects garbage at 1.5x its live heap unless told
// otherwise (issue 12: peak memory).
func TestGCPercentFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{nil, 50},
		{[]string{"--gc-percent=100"}, 100},
	} {
		fs := flag.NewFlagSet("ecmplb-controller", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c config
		registerFlags(fs, &c)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if c.gcPercent != tt.want {
			t.Errorf("args %q: gcPercent = %d, want %d", tt.args, c.gcPercent, tt.want)
		}
	}
}
