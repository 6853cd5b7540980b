// Package netlab builds small network-namespace topologies for the speaker's
// integration tests and benchmark, and runs the current test inside one of them. All
// names carry the project prefix "elb" and a random suffix; everything is removed by
// Close (tests register it with t.Cleanup).
package netlab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Lab is a set of network namespaces and veth links.
type Lab struct {
	id  string
	nss []string
}

// New returns an empty lab with a fresh random id.
func New() *Lab {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return &Lab{id: hex.EncodeToString(b)}
}

// ID is the lab's random suffix.
func (l *Lab) ID() string { return l.id }

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NS creates a network namespace "elb<role><id>" with loopback up and returns its name.
func (l *Lab) NS(role string) (string, error) {
	name := "elb" + role + l.id
	if err := run("ip", "netns", "add", name); err != nil {
		return "", err
	}
	l.nss = append(l.nss, name)
	if err := run("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		return "", err
	}
	return name, nil
}

// Link connects two namespaces with a veth pair and gives each end the addresses
// (CIDR notation). Interface names are "<ifA>" and "<ifB>" (at most 15 bytes).
func (l *Lab) Link(nsA, ifA string, addrsA []string, nsB, ifB string, addrsB []string) error {
	if err := run("ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		return err
	}
	for _, side := range []struct {
		ns, dev string
		addrs   []string
	}{{nsA, ifA, addrsA}, {nsB, ifB, addrsB}} {
		for _, a := range side.addrs {
			if err := run("ip", "-n", side.ns, "addr", "add", a, "dev", side.dev); err != nil {
				return err
			}
		}
		if err := run("ip", "-n", side.ns, "link", "set", side.dev, "up"); err != nil {
			return err
		}
	}
	return nil
}

// Exec runs a command inside ns and returns its combined output.
func Exec(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s: %w: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Close deletes every namespace of the lab (veths go with them).
func (l *Lab) Close() error {
	var first error
	for _, ns := range l.nss {
		if err := run("ip", "netns", "del", ns); err != nil && first == nil {
			first = err
		}
	}
	l.nss = nil
	return first
}

// ChildEnv marks a re-executed test process that already runs inside the lab.
const ChildEnv = "ECMPLB_NETLAB_CHILD"

// IsChild tells whether this process is the re-executed child.
func IsChild() bool { return os.Getenv(ChildEnv) != "" }

// RerunInNS runs the current test binary again inside ns, limited to the test named
// testName, with env added, and returns its combined output and error.
func RerunInNS(ns, testName string, env []string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	// The child's own -test.timeout makes a hang end with a goroutine dump; the
	// context kills it should even that fail.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, "-test.run", "^"+testName+"$", "-test.v", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(append(os.Environ(), ChildEnv+"=1"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
