package watch

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ecmplb/ecmplb/api/v1beta1"
)

// values returns every series of the metallb_ families as
// "name{label=value,...}=value".
func (sp *speaker) values(t *testing.T, prefix string) map[string]float64 {
	t.Helper()
	mfs, err := sp.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), prefix) {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

func keysOf(m map[string]float64) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+strconv.FormatFloat(v, 'g', -1, 64))
	}
	slices.Sort(out)
	return out
}

// The speaker's metallb_k8s_client_* and metallb_speaker_announced follow
// what it processed and announces.
func TestControllerMetalLBMetrics(t *testing.T) {
	objs := append([]runtime.Object{node1(), pool("prod", created, "203.0.113.0/24"), peer("tor1", "10.0.0.1", nil),
		advert("all", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"prod"} }), lbService("web", "203.0.113.5", nil), readySlice("web")}, badObjects()...)
	c := newCluster(objs...)
	sp := startSpeaker(t, c, "")
	eventually(t, "web announced", func() (bool, any) {
		v := sp.values(t, "metallb_speaker_announced")
		return reflect.DeepEqual(keysOf(v), []string{"metallb_speaker_announced{ip=203.0.113.5,node=n1,protocol=bgp,service=default/web}=1"}), keysOf(v)
	})
	// Bad objects: the newest configuration did not load; nothing loaded cleanly yet.
	eventually(t, "config state with bad objects", func() (bool, any) {
		v := sp.values(t, "metallb_k8s_client_")
		ok := v["metallb_k8s_client_config_stale_bool{}"] == 1 && v["metallb_k8s_client_config_loaded_bool{}"] == 0 &&
			v["metallb_k8s_client_updates_total{}"] >= 2 && v["metallb_k8s_client_update_errors_total{}"] >= 1
		return ok, keysOf(v)
	})
	for _, o := range badObjects() {
		c.source(o).Delete(o)
	}
	eventually(t, "config state once every object is fine", func() (bool, any) {
		v := sp.values(t, "metallb_k8s_client_config")
		return v["metallb_k8s_client_config_stale_bool{}"] == 0 && v["metallb_k8s_client_config_loaded_bool{}"] == 1, keysOf(v)
	})
	// The Service goes: its series goes.
	if err := c.client.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web's series gone", func() (bool, any) {
		v := sp.values(t, "metallb_speaker_announced")
		return len(v) == 0, keysOf(v)
	})
}

// OnConfigState receives every verdict on the configuration: the rejected
// objects, one line each naming kind, name and field; none once all are fine.
func TestControllerReportsConfigState(t *testing.T) {
	objs := append([]runtime.Object{node1(), pool("prod", created, "203.0.113.0/24"), peer("tor1", "10.0.0.1", nil),
		advert("all", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"prod"} })}, badObjects()...)
	c := newCluster(objs...)
	var mu sync.Mutex
	var last []string
	calls := 0
	startSpeakerOpts(t, c, func(o *Options, _ *speaker) {
		o.OnConfigState = func(problems []string) {
			mu.Lock()
			defer mu.Unlock()
			last, calls = slices.Clone(problems), calls+1
		}
	})
	eventually(t, "a verdict naming the bad objects", func() (bool, any) {
		mu.Lock()
		defer mu.Unlock()
		s := strings.Join(last, "\n")
		return len(last) == 7 && strings.Contains(s, `BGPPeer "bad-hold": spec.holdTime`) &&
			strings.Contains(s, `IPAddressPool "bad-pool": spec.addresses[0]`), last
	})
	for _, o := range badObjects() {
		c.source(o).Delete(o)
	}
	eventually(t, "a clean verdict", func() (bool, any) {
		mu.Lock()
		defer mu.Unlock()
		return calls > 1 && len(last) == 0, last
	})
}
