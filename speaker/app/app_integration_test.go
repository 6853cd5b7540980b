package app

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/speaker/internal/speakerlab"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
	"github.com/ecmplb/ecmplb/speaker/status"
)

func waitRoute(t *testing.T, r *testrouter.Router, prefix string, want bool, comms ...string) {
	t.Helper()
	err := r.WaitFor(20*time.Second, func(routes map[string]map[string]testrouter.Route, _ map[string]bool) bool {
		got, ok := routes[speakerlab.SpeakerAddr][prefix]
		if !want {
			return !ok
		}
		return ok && got.NextHop == speakerlab.SpeakerAddr && reflect.DeepEqual(got.Communities, comms)
	})
	if err != nil {
		t.Fatalf("route %s present=%v communities %v: %v (router has %+v)", prefix, want, comms, err, r.Routes(speakerlab.SpeakerAddr))
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSpeakerWithAPIServer runs the whole speaker against a real API server and a
// GoBGP router in another network namespace.
func TestSpeakerWithAPIServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	env := testenv.Start(t, testenv.Options{Namespaces: []string{"metallb-system", "default"}})
	lab, err := speakerlab.Start(env, speakerlab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Close() })
	ctx := context.Background()
	if err := lab.CreateNode(ctx, map[string]string{"zone": "a"}); err != nil {
		t.Fatal(err)
	}
	if err := lab.BasicConfig(ctx); err != nil {
		t.Fatal(err)
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
	if err := lab.WaitSessions(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	r := lab.Routers[0]

	// Local policy: announced only while this node has a ready endpoint.
	const ip = "203.0.113.5"
	prefix := ip + "/32"
	if err := lab.CreateService(ctx, "default", "web", ip, true); err != nil {
		t.Fatal(err)
	}
	if err := lab.CreateEndpoints(ctx, "default", "web", false); err != nil {
		t.Fatal(err)
	}
	if err := lab.CreateService(ctx, "default", "other", "203.0.113.6", false); err != nil {
		t.Fatal(err)
	}
	if err := lab.CreateEndpoints(ctx, "default", "other", true); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, "203.0.113.6/32", true, "65000:100")
	waitRoute(t, r, prefix, false)
	if err := lab.SetReady(ctx, "default", "web", true); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, prefix, true, "65000:100")
	if err := lab.SetReady(ctx, "default", "web", false); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, prefix, false)
	if err := lab.SetReady(ctx, "default", "web", true); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, prefix, true, "65000:100")

	// Status object and Events.
	name := status.ObjectName(speakerlab.NodeName, "default/web")
	eventually(t, "ServiceBGPStatus", func() bool {
		var st v1beta1.ServiceBGPStatus
		if err := lab.Get(ctx, "servicebgpstatuses", name, &st); err != nil {
			return false
		}
		return reflect.DeepEqual(st.Status.Peers, []string{"tor1"}) && reflect.DeepEqual(st.Status.EstablishedPeers, []string{"tor1"}) &&
			reflect.DeepEqual(st.Status.Prefixes, []string{prefix}) && st.Status.Node == speakerlab.NodeName &&
			st.Labels[v1beta1.LabelServiceName] == "web"
	})
	eventually(t, "Announced event", func() bool {
		evs, err := lab.Client.CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.InvolvedObject.Name == "web" && e.Reason == "Announced" && strings.Contains(e.Message, prefix) {
				return true
			}
		}
		return false
	})

	// A bad advertisement keeps the last good configuration, with a warning Event.
	var adv v1beta1.BGPAdvertisement
	if err := lab.Get(ctx, "bgpadvertisements", "adv", &adv); err != nil {
		t.Fatal(err)
	}
	adv.Spec.Communities = []string{"65000:200", "not-a-community"}
	if err := lab.Update(ctx, "bgpadvertisements", "adv", &adv); err != nil {
		t.Fatal(err)
	}
	eventually(t, "InvalidConfiguration event", func() bool {
		// On the rejected object itself, in its namespace.
		evs, err := lab.Client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Reason == "InvalidConfiguration" && strings.Contains(e.Message, `BGPAdvertisement "adv": spec.communities`) {
				return true
			}
		}
		return false
	})
	// Still announced with the old community, and Service changes still work.
	waitRoute(t, r, prefix, true, "65000:100")
	if err := lab.SetReady(ctx, "default", "web", false); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, prefix, false)
	if err := lab.SetReady(ctx, "default", "web", true); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, prefix, true, "65000:100")

	// Fixing it applies the new community.
	if err := lab.Get(ctx, "bgpadvertisements", "adv", &adv); err != nil {
		t.Fatal(err)
	}
	adv.Spec.Communities = []string{"65000:200"}
	if err := lab.Update(ctx, "bgpadvertisements", "adv", &adv); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, prefix, true, "65000:200")

	// Excluding the node withdraws everything.
	node, err := lab.Client.CoreV1().Nodes().Get(ctx, speakerlab.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Labels[v1beta1.LabelExcludeFromExternalLB] = ""
	if _, err := lab.Client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, prefix, false)
	waitRoute(t, r, "203.0.113.6/32", false)
	node, _ = lab.Client.CoreV1().Nodes().Get(ctx, speakerlab.NodeName, metav1.GetOptions{})
	delete(node.Labels, v1beta1.LabelExcludeFromExternalLB)
	if _, err := lab.Client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, prefix, true, "65000:200")

	// Deleting the Service withdraws it and removes its status object.
	if err := lab.Client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, r, prefix, false)
	eventually(t, "status object deleted", func() bool {
		var st v1beta1.ServiceBGPStatus
		return apierrors.IsNotFound(lab.Get(ctx, "servicebgpstatuses", name, &st))
	})
}
