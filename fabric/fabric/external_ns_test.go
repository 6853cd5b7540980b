package fabric_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/fabric"
	"github.com/ecmplb/ecmplb/fabric/topology"
	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

// extNodeNSEnv passes the external node's namespace to the re-run test.
const extNodeNSEnv = "ECMPLB_TEST_EXT_NODE_NS"

// An external segment: the test stands in for the host inside a namespace of
// its own, with a bridge and a node namespace on it; the fabric's ToR joins
// that bridge through a host veth, reaches the node at L2, peers with it at
// its address, and Down removes the host end.
func TestExternalSegment(t *testing.T) {
	if !netnstest.IsChild() {
		lab := netnstest.Lab(t)
		host, err := lab.NS("host")
		if err != nil {
			t.Fatal(err)
		}
		node, err := lab.NS("node")
		if err != nil {
			t.Fatal(err)
		}
		if err := netns.AddBridge(host, "extbr0"); err != nil {
			t.Fatal(err)
		}
		if err := netns.AddVeth(node, "eth0", host, "nport"); err != nil {
			t.Fatal(err)
		}
		if err := netns.AttachToBridge(host, "nport", "extbr0"); err != nil {
			t.Fatal(err)
		}
		if err := netns.AddAddress(node, "eth0", netip.MustParsePrefix("10.0.0.131/24")); err != nil {
			t.Fatal(err)
		}
		out, err := netnstest.RerunInNS(host, t.Name(), []string{extNodeNSEnv + "=" + node})
		if err != nil {
			t.Fatalf("inside the host namespace: %v\n%s", err, out)
		}
		return
	}
	node := os.Getenv(extNodeNSEnv)
	topo := topology.Default()
	topo.Segment6 = netip.Prefix{}
	topo.ToRs = topo.ToRs[:1]
	topo.ToRs[0].Address6 = netip.Addr{}
	topo.Nodes = []topology.Node{{Name: "node1", Address: netip.MustParseAddr("10.0.0.131"), ASN: 65100}}
	topo.Clients[0].Link6 = netip.Prefix{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := fabric.Up(ctx, topo, fabric.Options{Instance: instanceName(t), Binary: binary, ExitWithCaller: true,
		ExternalSegment: "extbr0", ExternalNodes: true})
	if err != nil {
		t.Fatal(err)
	}
	st := f.State()
	defer func() {
		if err := f.Down(context.Background()); err != nil {
			t.Errorf("down: %v", err)
		}
		for _, l := range st.HostLinks {
			if _, err := netlink.LinkByName(l); err == nil {
				t.Errorf("host link %s left behind", l)
			}
		}
	}()
	if len(st.HostLinks) != 1 || st.Switch != "" || f.NodeNetNS("node1") != "" {
		t.Fatalf("state: host links %v, switch %q, node namespace %q", st.HostLinks, st.Switch, f.NodeNetNS("node1"))
	}
	l, err := netlink.LinkByName(st.HostLinks[0])
	if err != nil {
		t.Fatal(err)
	}
	br, err := netlink.LinkByName("extbr0")
	if err != nil {
		t.Fatal(err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		t.Errorf("host link %s is not a port of extbr0", l.Attrs().Name)
	}
	if err := udpRoundTrip(node, f.NetNS("tor1"), netip.MustParseAddrPort("10.0.0.131:9999")); err != nil {
		t.Errorf("tor1 cannot reach the external node over the bridge: %v", err)
	}
	ns, err := f.Neighbors(ctx, "tor1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(ns, func(n control.Neighbor) bool { return n.Address == netip.MustParseAddr("10.0.0.131") }) {
		t.Errorf("tor1's neighbors %+v lack the external node", ns)
	}
	want := []fabric.ClientRoute{{Dst: netip.MustParsePrefix("172.31.0.0/30"), Via: netip.MustParseAddr("10.0.0.1")}}
	if got := f.ClientRoutes(); !slices.Equal(got, want) {
		t.Errorf("client routes %v, want %v", got, want)
	}
}

// udpRoundTrip echoes one datagram from a socket in namespace from to an
// echo socket at addr in namespace at.
func udpRoundTrip(at, from string, addr netip.AddrPort) error {
	var srv net.PacketConn
	if err := netns.Do(at, func() (err error) { srv, err = net.ListenPacket("udp", addr.String()); return }); err != nil {
		return err
	}
	defer srv.Close()
	go func() {
		buf := make([]byte, 64)
		n, peer, err := srv.ReadFrom(buf)
		if err == nil {
			_, _ = srv.WriteTo(buf[:n], peer)
		}
	}()
	var c net.Conn
	if err := netns.Do(from, func() (err error) { c, err = net.Dial("udp", addr.String()); return }); err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "hello" {
		return fmt.Errorf("echo %q", buf[:n])
	}
	return nil
}
