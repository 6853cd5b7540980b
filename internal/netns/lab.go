package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// randomID returns 6 random hex digits.
func randomID() string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// NS is a handle on a named namespace.
type NS struct{ Name string }

// Path is the namespace's bind mount (for bfd.WithNetNSPath).
func (n *NS) Path() string { return Path(n.Name) }

// Run runs a command inside the namespace and returns its combined output.
func (n *NS) Run(name string, args ...string) (string, error) {
	return Exec(n.Name, append([]string{name}, args...)...)
}

// Lab is a set of namespaces created for a test or benchmark. Names carry the
// project prefix "elb" and the lab's random id, so parallel runs never collide;
// Close removes every one (and so every veth between them).
type Lab struct {
	id  string
	nss []string
}

// NewLab returns an empty lab with a fresh random id.
func NewLab() *Lab { return &Lab{id: randomID()} }

// ID is the lab's random suffix (6 hex digits).
func (l *Lab) ID() string { return l.id }

// NS creates a namespace "elb<role><id>" with loopback up and returns its name.
// Keep role within 4 characters so names derived from it fit an interface name.
func (l *Lab) NS(role string) (string, error) {
	name := "elb" + role + l.id
	err := Create(context.Background(), name)
	if Exists(name) {
		l.nss = append(l.nss, name)
	}
	if err != nil {
		return "", err
	}
	return name, nil
}

// Link joins two namespaces with a veth pair, as Connect, with addresses in CIDR
// notation.
func (l *Lab) Link(nsA, ifA string, addrsA []string, nsB, ifB string, addrsB []string) error {
	pa, err := parsePrefixes(addrsA)
	if err != nil {
		return err
	}
	pb, err := parsePrefixes(addrsB)
	if err != nil {
		return err
	}
	return Connect(nsA, ifA, pa, nsB, ifB, pb)
}

func parsePrefixes(addrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", a, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Close deletes every namespace of the lab, and with them their interfaces.
func (l *Lab) Close() error {
	var errs []error
	for _, n := range l.nss {
		errs = append(errs, Delete(n))
	}
	l.nss = nil
	return errors.Join(errs...)
}

// Link is the veth pair of a Pair.
type Link struct {
	IfA, IfB     string
	AddrA, AddrB netip.Prefix
}

// Pair is two fresh namespaces joined by one veth link, the usual set-up of a
// single-hop BFD test: A is 10.255.0.1/30, B is 10.255.0.2/30.
type Pair struct {
	A, B *NS
	Link *Link
	lab  *Lab
}

// NewPair creates the namespaces ("elb<tag>a<id>" and "elb<tag>b<id>"; keep tag
// within 3 characters) and the link. Close removes them.
func NewPair(tag string) (_ *Pair, err error) {
	p := &Pair{lab: NewLab()}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	a, err := p.lab.NS(tag + "a")
	if err != nil {
		return nil, err
	}
	b, err := p.lab.NS(tag + "b")
	if err != nil {
		return nil, err
	}
	p.A, p.B = &NS{Name: a}, &NS{Name: b}
	p.Link = &Link{IfA: ifName(a, b), IfB: ifName(b, a),
		AddrA: netip.MustParsePrefix("10.255.0.1/30"), AddrB: netip.MustParsePrefix("10.255.0.2/30")}
	if err := Connect(a, p.Link.IfA, []netip.Prefix{p.Link.AddrA}, b, p.Link.IfB, []netip.Prefix{p.Link.AddrB}); err != nil {
		return nil, err
	}
	return p, nil
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

// Close deletes both namespaces.
func (p *Pair) Close() error { return p.lab.Close() }
