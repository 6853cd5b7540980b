// Package speakerlab sets up what the speaker's full-system tests and benchmark need:
// a real API server (internal/testenv) on the host's loopback, a router namespace
// with one or two test routers, a speaker namespace linked to it, the API server
// forwarded into the speaker namespace, and the speaker process inside it.
package speakerlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ecmplb/ecmplb/api/v1beta1"
	"github.com/ecmplb/ecmplb/api/v1beta2"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/nsforward"
	"github.com/ecmplb/ecmplb/internal/scheme"
	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/speaker/internal/testrouter"
	"github.com/ecmplb/ecmplb/speaker/watch"
)

// Addresses of the lab topology.
const (
	NodeName    = "node1"
	SpeakerAddr = "10.0.0.21"
	RouterASN   = 65000
	SpeakerASN  = 65100
	Namespace   = "metallb-system"
)

// RouterAddr returns the address of router i (0-based): 10.0.0.1, 10.0.0.2, ...
func RouterAddr(i int) string { return fmt.Sprintf("10.0.0.%d", i+1) }

// SpeakerAddr6 is the speaker's IPv6 address with Options.DualStack.
const SpeakerAddr6 = "fd00::21"

// RouterAddr6 returns the IPv6 address of router i with Options.DualStack:
// fd00::1, fd00::2, ...
func RouterAddr6(i int) string { return fmt.Sprintf("fd00::%d", i+1) }

// Lab is a running lab.
type Lab struct {
	Env       *testenv.Env
	Net       *netns.Lab
	RouterNS  string
	SpeakerNS string
	Routers   []*testrouter.Router
	Client    kubernetes.Interface
	MetalLB   rest.Interface
	fwd       *nsforward.Forwarder
	speaker   *exec.Cmd
	spkDone   chan struct{}
	password  string
	dualStack bool
}

// Options configure Start.
type Options struct {
	Routers int // default 1
	// OnEvent receives every router event (index of the router, event).
	OnEvent func(router int, e testrouter.Event)
	// Password, when set, makes the routers require TCP MD5 with it, and
	// BasicConfig's BGPPeers carry it. The routers' listeners must then be
	// plain TCP: run them with GODEBUG=multipathtcp=0 (Go listens with
	// MPTCP by default, and MPTCP sockets take no TCP MD5 key).
	Password string
	// ExtraPeers are more BGP speakers in the speaker namespace (benchmarks):
	// their addresses go on the speaker side of the link and every router
	// accepts them as neighbors.
	ExtraPeers []testrouter.Neighbor
	// DualStack gives the routers and the speaker an IPv6 address as well
	// (RouterAddr6, SpeakerAddr6 on fd00::/64): each router listens on both
	// and accepts the speaker from either, and CreateNode gives the Node both
	// addresses.
	DualStack bool
}

// Start builds the lab around env. Close undoes everything.
func Start(env *testenv.Env, o Options) (_ *Lab, err error) {
	if o.Routers == 0 {
		o.Routers = 1
	}
	l := &Lab{Env: env, Net: netns.NewLab(), password: o.Password, dualStack: o.DualStack}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.RouterNS, err = l.Net.NS("r"); err != nil {
		return nil, err
	}
	if l.SpeakerNS, err = l.Net.NS("s"); err != nil {
		return nil, err
	}
	var raddrs []string
	for i := 0; i < o.Routers; i++ {
		raddrs = append(raddrs, RouterAddr(i)+"/24")
	}
	saddrs := []string{SpeakerAddr + "/24"}
	if o.DualStack {
		for i := 0; i < o.Routers; i++ {
			raddrs = append(raddrs, RouterAddr6(i)+"/64")
		}
		saddrs = append(saddrs, SpeakerAddr6+"/64")
	}
	for _, p := range o.ExtraPeers {
		saddrs = append(saddrs, p.Address+"/24")
	}
	if err = l.Net.Link(l.RouterNS, "elbr"+l.Net.ID(), raddrs, l.SpeakerNS, "elbs"+l.Net.ID(), saddrs); err != nil {
		return nil, err
	}
	u, err := url.Parse(env.URL)
	if err != nil {
		return nil, err
	}
	if l.fwd, err = nsforward.Start(l.SpeakerNS, u.Host); err != nil {
		return nil, err
	}
	for i := 0; i < o.Routers; i++ {
		i := i
		var cb func(testrouter.Event)
		if o.OnEvent != nil {
			cb = func(e testrouter.Event) { o.OnEvent(i, e) }
		}
		cfg := testrouter.Config{ASN: RouterASN, RouterID: RouterAddr(i), Listen: []string{RouterAddr(i)}, Port: 179,
			Neighbors: append([]testrouter.Neighbor{{Address: SpeakerAddr, ASN: SpeakerASN, Password: o.Password}}, o.ExtraPeers...)}
		if o.DualStack {
			cfg.Listen = append(cfg.Listen, RouterAddr6(i))
			cfg.Neighbors = append(cfg.Neighbors, testrouter.Neighbor{Address: SpeakerAddr6, ASN: SpeakerASN, Password: o.Password})
		}
		r, err := testrouter.Start(cfg, testrouter.Options{NetNS: l.RouterNS, OnEvent: cb})
		if err != nil {
			return nil, err
		}
		l.Routers = append(l.Routers, r)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	if l.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, err
	}
	if l.MetalLB, err = watch.NewMetalLBClient(cfg); err != nil {
		return nil, err
	}
	return l, nil
}

// StartSpeaker runs argv inside the speaker namespace (stdout and stderr to logPath
// when set).
func (l *Lab) StartSpeaker(argv []string, env []string, logPath string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.SpeakerNS}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	l.speaker = cmd
	l.spkDone = make(chan struct{})
	go func() { _ = cmd.Wait(); close(l.spkDone) }()
	return nil
}

// ForwarderLog lists the latest connections from the speaker's namespace to
// the apiserver (nsforward.Forwarder.Log), for a failure message.
func (l *Lab) ForwarderLog() []string { return l.fwd.Log() }

// SpeakerPID is the speaker's process id (ip netns exec replaces itself with it).
func (l *Lab) SpeakerPID() int { return l.speaker.Process.Pid }

// StopSpeaker sends SIGTERM and waits (SIGKILL after 10 s).
func (l *Lab) StopSpeaker() {
	if l.speaker == nil {
		return
	}
	_ = l.speaker.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.spkDone:
	case <-time.After(10 * time.Second):
		_ = l.speaker.Process.Kill()
		<-l.spkDone
	}
	l.speaker = nil
}

// Close stops the speaker and routers and removes the namespaces.
func (l *Lab) Close() error {
	l.StopSpeaker()
	for _, r := range l.Routers {
		r.Stop()
	}
	if l.fwd != nil {
		l.fwd.Close()
	}
	return l.Net.Close()
}

// CreateNode creates the speaker's Node with its address (both with
// Options.DualStack).
func (l *Lab) CreateNode(ctx context.Context, labels map[string]string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName, Labels: labels}}
	n, err := l.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: SpeakerAddr}}
	if l.dualStack {
		n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: SpeakerAddr6})
	}
	_, err = l.Client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
	return err
}

// Create creates a metallb.io object in the lab namespace; resource is the plural
// ("bgppeers"). The object's Go type picks the version (v1beta2.BGPPeer: v1beta2).
func (l *Lab) Create(ctx context.Context, resource string, obj runtime.Object) error {
	r, err := withBody(inVersionOf(l.MetalLB.Post(), obj), obj)
	if err != nil {
		return err
	}
	return r.Namespace(Namespace).Resource(resource).Do(ctx).Error()
}

// Update replaces a metallb.io object (obj must carry its resourceVersion).
func (l *Lab) Update(ctx context.Context, resource, name string, obj runtime.Object) error {
	r, err := withBody(inVersionOf(l.MetalLB.Put(), obj), obj)
	if err != nil {
		return err
	}
	return r.Namespace(Namespace).Resource(resource).Name(name).Do(ctx).Error()
}

// Get reads a metallb.io object in the version of into.
func (l *Lab) Get(ctx context.Context, resource, name string, into runtime.Object) error {
	return inVersionOf(l.MetalLB.Get(), into).Namespace(Namespace).Resource(resource).Name(name).Do(ctx).Into(into)
}

// inVersionOf aims r (of the v1beta1 client) at the metallb.io version of
// obj's Go type.
func inVersionOf(r *rest.Request, obj runtime.Object) *rest.Request {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 || gvks[0].GroupVersion() == v1beta1.GroupVersion {
		return r
	}
	return r.AbsPath("/apis", gvks[0].Group, gvks[0].Version)
}

// withBody sets obj as r's body in obj's own version: the client's encoder
// would relabel any metallb.io object as v1beta1.
func withBody(r *rest.Request, obj runtime.Object) (*rest.Request, error) {
	gvks, _, err := scheme.Scheme.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 || gvks[0].GroupVersion() == v1beta1.GroupVersion {
		return r.Body(obj), nil
	}
	obj = obj.DeepCopyObject()
	obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return r.Body(b), nil
}

// BasicConfig creates a pool (203.0.113.0/24 and 198.18.0.0/15), one BGPPeer per
// router and an advertisement with community 65000:100.
func (l *Lab) BasicConfig(ctx context.Context) error {
	tm := func(k string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: k}
	}
	if err := l.Create(ctx, "ipaddresspools", &v1beta1.IPAddressPool{TypeMeta: tm("IPAddressPool"),
		ObjectMeta: metav1.ObjectMeta{Name: "pool"},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24", "198.18.0.0/15"}}}); err != nil {
		return fmt.Errorf("pool: %w", err)
	}
	for i := range l.Routers {
		if err := l.Create(ctx, "bgppeers", &v1beta2.BGPPeer{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1beta2.GroupVersion.String(), Kind: "BGPPeer"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("tor%d", i+1)},
			Spec: v1beta2.BGPPeerSpec{MyASN: SpeakerASN, ASN: RouterASN, Address: RouterAddr(i), Password: l.password,
				ConnectTime: &metav1.Duration{Duration: time.Second}}}); err != nil {
			return fmt.Errorf("peer: %w", err)
		}
	}
	if err := l.Create(ctx, "bgpadvertisements", &v1beta1.BGPAdvertisement{TypeMeta: tm("BGPAdvertisement"),
		ObjectMeta: metav1.ObjectMeta{Name: "adv"},
		Spec:       v1beta1.BGPAdvertisementSpec{Communities: []string{"65000:100"}}}); err != nil {
		return fmt.Errorf("advertisement: %w", err)
	}
	return nil
}

// WaitSessions waits until every router has its session with the speaker up.
func (l *Lab) WaitSessions(timeout time.Duration) error {
	for i, r := range l.Routers {
		if err := r.WaitFor(timeout, func(_ map[string]map[string]testrouter.Route, up map[string]bool) bool {
			return up[SpeakerAddr]
		}); err != nil {
			return fmt.Errorf("router %d session: %w", i, err)
		}
	}
	return nil
}
