// Package frrlab runs network namespaces, veth links and FRR daemons for
// BFD and BGP interop tests and benchmarks. Everything it creates carries the
// project prefix "elb" and a random suffix, so parallel runs never collide,
// and every constructor has a Close that removes what it made.
package frrlab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// UniqueName returns "elb" + tag + 6 random hex digits; keep tag within 4
// characters so the result also fits an interface name (15 chars).
func UniqueName(tag string) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return "elb" + tag + hex.EncodeToString(b[:])
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Netns is a named network namespace (ip netns).
type Netns struct{ Name string }

// NewNetns creates the namespace and brings its loopback up.
func NewNetns(name string) (*Netns, error) {
	if _, err := run("ip", "netns", "add", name); err != nil {
		return nil, err
	}
	n := &Netns{Name: name}
	if _, err := n.Run("ip", "link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Path is the namespace's bind mount, for bfd.WithNetNSPath.
func (n *Netns) Path() string { return "/var/run/netns/" + n.Name }

// Run runs a command inside the namespace and returns its combined output.
func (n *Netns) Run(name string, args ...string) (string, error) {
	return run("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Close deletes the namespace (and with it every interface inside).
func (n *Netns) Close() error {
	_, err := run("ip", "netns", "del", n.Name)
	return err
}

// Link is a veth pair between two namespaces.
type Link struct {
	A, B         *Netns
	IfA, IfB     string
	AddrA, AddrB netip.Prefix
}

// Connect creates a veth pair with one end in a (address addrA) and the
// other in b (address addrB), both up. Interface names derive from the
// namespaces' names.
func Connect(a, b *Netns, addrA, addrB netip.Prefix) (*Link, error) {
	l := &Link{A: a, B: b, IfA: ifName(a.Name, b.Name), IfB: ifName(b.Name, a.Name), AddrA: addrA, AddrB: addrB}
	if _, err := run("ip", "link", "add", l.IfA, "netns", a.Name, "type", "veth", "peer", "name", l.IfB, "netns", b.Name); err != nil {
		return nil, err
	}
	for _, side := range []struct {
		ns   *Netns
		ifn  string
		addr netip.Prefix
	}{{a, l.IfA, addrA}, {b, l.IfB, addrB}} {
		if _, err := side.ns.Run("ip", "addr", "add", side.addr.String(), "dev", side.ifn, "nodad"); err != nil {
			return nil, err
		}
		if _, err := side.ns.Run("ip", "link", "set", side.ifn, "up"); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// ifName builds a name of at most 15 characters unique to the ordered pair.
func ifName(self, other string) string {
	n := "v" + strings.TrimPrefix(self, "elb")
	if len(n) > 10 {
		n = n[:10]
	}
	suffix := strings.TrimPrefix(other, "elb")
	if len(suffix) > 4 {
		suffix = suffix[len(suffix)-4:]
	}
	return n + suffix
}

// Pair is two fresh namespaces joined by one veth link, the usual set-up of
// a single-hop BFD test: A is 10.255.0.1/30, B is 10.255.0.2/30.
type Pair struct {
	A, B *Netns
	Link *Link
}

// NewPair creates the namespaces (names from UniqueName(tag+"a"/"b")) and the link.
func NewPair(tag string) (*Pair, error) {
	a, err := NewNetns(UniqueName(tag + "a"))
	if err != nil {
		return nil, err
	}
	b, err := NewNetns(UniqueName(tag + "b"))
	if err != nil {
		a.Close()
		return nil, err
	}
	p := &Pair{A: a, B: b}
	p.Link, err = Connect(a, b, netip.MustParsePrefix("10.255.0.1/30"), netip.MustParsePrefix("10.255.0.2/30"))
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close deletes both namespaces.
func (p *Pair) Close() error {
	errA := p.A.Close()
	errB := p.B.Close()
	if errA != nil {
		return errA
	}
	return errB
}
