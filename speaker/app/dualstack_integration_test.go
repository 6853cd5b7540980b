package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/speaker/internal/speakerlab"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
)

// TestSpeakerDualStack runs the whole speaker on a dual-stack node with two
// BGPPeers on one router: one over IPv6, one over IPv4 with
// dualStackAddressFamily. A Service with an IPv4 and an IPv6 address reaches
// the router as the IPv6 /128 alone over the IPv6 session (its family only),
// and as both over the dual-stack IPv4 session, each with the node's address
// of its family as next-hop.
func TestSpeakerDualStack(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	env := testenv.Start(t, testenv.Options{Namespaces: []string{"metallb-system", "default"}})
	lab, err := speakerlab.Start(env, speakerlab.Options{DualStack: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	ctx := context.Background()
	if err := lab.CreateNode(ctx, nil); err != nil {
		t.Fatal(err)
	}
	tm := func(v, k string) metav1.TypeMeta { return metav1.TypeMeta{APIVersion: "metallb.io/" + v, Kind: k} }
	second := &metav1.Duration{Duration: time.Second}
	for _, o := range []struct {
		resource string
		obj      runtime.Object
	}{
		{"ipaddresspools", &v1beta1.IPAddressPool{TypeMeta: tm("v1beta1", "IPAddressPool"), ObjectMeta: metav1.ObjectMeta{Name: "pool"},
			Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24", "2001:db8::/64"}}}},
		{"bgppeers", &v1beta2.BGPPeer{TypeMeta: tm("v1beta2", "BGPPeer"), ObjectMeta: metav1.ObjectMeta{Name: "tor-v6"},
			Spec: v1beta2.BGPPeerSpec{MyASN: speakerlab.SpeakerASN, ASN: speakerlab.RouterASN, Address: speakerlab.RouterAddr6(0), ConnectTime: second}}},
		{"bgppeers", &v1beta2.BGPPeer{TypeMeta: tm("v1beta2", "BGPPeer"), ObjectMeta: metav1.ObjectMeta{Name: "tor-dual"},
			Spec: v1beta2.BGPPeerSpec{MyASN: speakerlab.SpeakerASN, ASN: speakerlab.RouterASN, Address: speakerlab.RouterAddr(0), ConnectTime: second,
				DualStackAddressFamily: true}}},
		{"bgpadvertisements", &v1beta1.BGPAdvertisement{TypeMeta: tm("v1beta1", "BGPAdvertisement"), ObjectMeta: metav1.ObjectMeta{Name: "adv"}}},
	} {
		if err := lab.Create(ctx, o.resource, o.obj); err != nil {
			t.Fatalf("%s %+v: %v", o.resource, o.obj, err)
		}
	}
	self, _ := os.Executable()
	logPath := filepath.Join(t.TempDir(), "speaker.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("speaker log:\n%s", b)
		}
	})
	if err := lab.StartSpeaker([]string{self}, []string{envSpeaker + "=" + env.Kubeconfig, "NODE_NAME=" + speakerlab.NodeName}, logPath); err != nil {
		t.Fatal(err)
	}
	r := lab.Routers[0]
	for _, f := range []struct {
		neighbor string
		want     []string
	}{
		{speakerlab.SpeakerAddr6, []string{"ipv6-unicast"}},
		{speakerlab.SpeakerAddr, []string{"ipv4-unicast", "ipv6-unicast"}},
	} {
		if err := r.WaitFamilies(30*time.Second, f.neighbor, f.want...); err != nil {
			t.Fatal(err)
		}
	}

	if err := lab.CreateService(ctx, "default", "web", "203.0.113.5", false, "2001:db8::5"); err != nil {
		t.Fatal(err)
	}
	if err := lab.CreateEndpoints(ctx, "default", "web", true); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{ // neighbor → prefix → next-hop
		speakerlab.SpeakerAddr6: {"2001:db8::5/128": speakerlab.SpeakerAddr6},
		speakerlab.SpeakerAddr:  {"203.0.113.5/32": speakerlab.SpeakerAddr, "2001:db8::5/128": speakerlab.SpeakerAddr6},
	}
	err = r.WaitFor(20*time.Second, func(routes map[string]map[string]testrouter.Route, _ map[string]bool) bool {
		for n, ps := range want {
			for p, nh := range ps {
				if got, ok := routes[n][p]; !ok || got.NextHop != nh {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("routes: %v; router has %+v from %s, %+v from %s", err, r.Routes(speakerlab.SpeakerAddr6), speakerlab.SpeakerAddr6,
			r.Routes(speakerlab.SpeakerAddr), speakerlab.SpeakerAddr)
	}
	// The IPv6 session carries no IPv4 route: it did not negotiate IPv4.
	if got := r.Routes(speakerlab.SpeakerAddr6); len(got) != 1 {
		t.Errorf("over the IPv6 session: %+v, want the /128 only", got)
	}
}
