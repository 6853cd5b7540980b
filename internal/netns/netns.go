// Package netns is the project's one helper for network namespaces: named
// namespaces (visible to `ip netns`), bridges, veth pairs, addresses, routes and
// per-namespace sysctls (links.go); and throw-away labs of namespaces for tests
// and benchmarks, removed by Close (lab.go). Tests use them through
// internal/netns/netnstest; processes in a namespace are found and signalled with
// internal/proc.
//
// Functions take namespace names and work from any goroutine: namespace switches
// happen on locked OS threads (containernetworking/plugins pkg/ns) and netlink
// requests go through per-namespace handles.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// Dir is where named namespaces are bind-mounted (as by `ip netns add`).
const Dir = "/var/run/netns"

// Path returns the bind-mount path of a named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Exists reports whether a named namespace exists.
func Exists(name string) bool { return ns.IsNSorErr(Path(name)) == nil }

// Create creates a named namespace with `ip netns add` and brings its loopback up.
func Create(ctx context.Context, name string) error {
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netns %s: ip netns add: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return SetLinkUp(name, "lo", true)
}

// Delete removes a named namespace (and with it every interface inside); a
// missing one is no error. Processes still inside keep it alive, unnamed.
func Delete(name string) error {
	if _, err := os.Stat(Path(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("netns %s: ip netns del: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Do runs f with the calling OS thread switched into the named namespace. Sockets f
// creates belong to that namespace for their whole life.
func Do(name string, f func() error) error {
	return ns.WithNetNSPath(Path(name), func(ns.NetNS) error { return f() })
}

// Exec runs a command inside the named namespace (`ip netns exec`) and returns its
// combined output.
func Exec(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// handle opens a netlink handle bound to the named namespace.
func handle(name string) (*netlink.Handle, error) {
	nh, err := vnetns.GetFromPath(Path(name))
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		return nil, fmt.Errorf("netns %s: netlink: %w", name, err)
	}
	return h, nil
}

func withHandle(name string, f func(h *netlink.Handle) error) error {
	h, err := handle(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return f(h)
}
