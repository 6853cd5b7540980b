// Package endpoint holds what the controller and the speaker share about their
// HTTP endpoints: the pprof server, which only ever listens on loopback (the
// speaker runs in the host's network namespace, whose addresses may face the
// routers), and the parsing of listen addresses built from the downward API.
package endpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"time"
)

// CheckLoopback returns an error unless addr ("host:port") names a loopback
// host: "localhost" or an address of 127.0.0.0/8 or ::1. An empty host (all
// addresses) is refused.
func CheckLoopback(flag, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: %w", flag, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%s %q: pprof is served on loopback only (e.g. 127.0.0.1:6060): it exposes memory contents and can be made to burn CPU", flag, addr)
	}
	return nil
}

// ListenAddr turns "host:port" into an address net.Listen takes, also when
// host is a bare IPv6 address (as the downward API's status.hostIP gives it:
// "$(HOST_IP):7472" becomes "fd00::1:7472"); the last colon then separates
// the port.
func ListenAddr(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr
	}
	if ip, err := netip.ParseAddr(addr[:i]); err == nil && ip.Is6() {
		return net.JoinHostPort(addr[:i], addr[i+1:])
	}
	return addr
}

// PprofMux returns a mux with the net/http/pprof handlers under /debug/pprof/.
func PprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also heap, goroutine, allocs, ... by name
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// ServePprof serves PprofMux on addr, which must be a loopback address
// (CheckLoopback), until ctx ends.
func ServePprof(ctx context.Context, addr string, log *slog.Logger) error {
	if err := CheckLoopback("--pprof-addr", addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pprof listener on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: PprofMux(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server", "addr", addr, "err", err)
		}
	}()
	log.Info("serving pprof", "addr", ln.Addr().String())
	return nil
}
