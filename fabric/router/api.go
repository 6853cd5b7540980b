package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ecmplb/ecmplb/fabric/control"
	"github.com/ecmplb/ecmplb/fabric/rib"
)

// backend is what the control API serves: the GoBGP router of this package or
// an FRR router (FRR), so the fabric and the scenarios read both alike.
type backend interface {
	// name is the router's name; started is closed once it serves.
	name() string
	started() <-chan struct{}
	// ribView is the ECMP view with its history.
	ribView() *rib.RIB
	eventsAfter(seq uint64) []control.Event
	registry() *prometheus.Registry
	bfdSessions(ctx context.Context) ([]control.BFDSession, error)
	Neighbors(ctx context.Context) ([]control.Neighbor, error)
	FIBRoutes() []control.FIBRoute
	AddNeighbor(ctx context.Context, n Neighbor) error
	DeleteNeighbor(ctx context.Context, addr netip.Addr) error
	SetNeighborAdmin(ctx context.Context, addr netip.Addr, enable bool, communication string) error
	SetBFDAdmin(addr netip.Addr, enable bool) error
	MuteBFD(addr netip.Addr, muted bool) error
}

func (r *Router) name() string                           { return r.cfg.Name }
func (r *Router) started() <-chan struct{}               { return r.startedCh }
func (r *Router) ribView() *rib.RIB                      { return r.rib }
func (r *Router) eventsAfter(seq uint64) []control.Event { return r.events.after(seq) }
func (r *Router) registry() *prometheus.Registry         { return r.reg }

func (r *Router) bfdSessions(context.Context) ([]control.BFDSession, error) {
	if r.bfd == nil {
		return []control.BFDSession{}, nil
	}
	return r.bfd.Sessions(), nil
}

// Handler serves the control API (see package control for the endpoints).
func (r *Router) Handler() http.Handler { return handler(r) }

func handler(r backend) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-r.started():
			writeJSON(w, map[string]string{"router": r.name(), "status": "ok"})
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /rib", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query().Get("prefix")
		if q == "" {
			writeJSON(w, r.ribView().All())
			return
		}
		if p, err := netip.ParsePrefix(q); err == nil {
			if s, ok := r.ribView().Get(p); ok {
				writeJSON(w, s)
				return
			}
			http.NotFound(w, req)
			return
		}
		a, err := netip.ParseAddr(q)
		if err != nil {
			http.Error(w, "prefix: "+err.Error(), http.StatusBadRequest)
			return
		}
		if s, ok := r.ribView().Lookup(a); ok {
			writeJSON(w, s)
			return
		}
		http.NotFound(w, req)
	})
	mux.HandleFunc("GET /summary", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, r.ribView().Summary()) })
	mux.HandleFunc("GET /history", func(w http.ResponseWriter, req *http.Request) {
		after, _ := strconv.ParseUint(req.URL.Query().Get("after"), 10, 64)
		wait, err := historyWait(req.URL.Query().Get("wait"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if wait == 0 {
			writeJSON(w, r.ribView().History(after))
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), wait)
		defer cancel()
		writeJSON(w, r.ribView().WaitHistory(ctx, after))
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, req *http.Request) {
		after, _ := strconv.ParseUint(req.URL.Query().Get("after"), 10, 64)
		writeJSON(w, r.eventsAfter(after))
	})
	mux.HandleFunc("GET /neighbors", func(w http.ResponseWriter, req *http.Request) {
		n, err := r.Neighbors(req.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, n)
	})
	mux.HandleFunc("GET /bfd", func(w http.ResponseWriter, req *http.Request) {
		out, err := r.bfdSessions(req.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /fib", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, r.FIBRoutes()) })
	admin := func(enable bool) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			addr, err := netip.ParseAddr(req.PathValue("addr"))
			if err != nil {
				http.Error(w, "neighbor: "+err.Error(), http.StatusBadRequest)
				return
			}
			var body control.DisableRequest
			if req.ContentLength > 0 {
				if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
					http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
					return
				}
			}
			if err := r.SetNeighborAdmin(req.Context(), addr, enable, body.Communication); err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /neighbors", func(w http.ResponseWriter, req *http.Request) {
		var n Neighbor
		if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := r.AddNeighbor(req.Context(), n); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /neighbors/{addr}", func(w http.ResponseWriter, req *http.Request) {
		addr, err := netip.ParseAddr(req.PathValue("addr"))
		if err != nil {
			http.Error(w, "neighbor: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := r.DeleteNeighbor(req.Context(), addr); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	bfdOp := func(op func(netip.Addr) error) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			addr, err := netip.ParseAddr(req.PathValue("addr"))
			if err != nil {
				http.Error(w, "neighbor: "+err.Error(), http.StatusBadRequest)
				return
			}
			if err := op(addr); err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /bfd/{addr}/disable", bfdOp(func(a netip.Addr) error { return r.SetBFDAdmin(a, false) }))
	mux.HandleFunc("POST /bfd/{addr}/enable", bfdOp(func(a netip.Addr) error { return r.SetBFDAdmin(a, true) }))
	mux.HandleFunc("POST /bfd/{addr}/mute", bfdOp(func(a netip.Addr) error { return r.MuteBFD(a, true) }))
	mux.HandleFunc("POST /bfd/{addr}/unmute", bfdOp(func(a netip.Addr) error { return r.MuteBFD(a, false) }))
	mux.HandleFunc("POST /neighbors/{addr}/disable", admin(false))
	mux.HandleFunc("POST /neighbors/{addr}/enable", admin(true))
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.registry(), promhttp.HandlerOpts{}))
	return mux
}

// maxHistoryWait bounds a long poll of /history, so a reader that went away
// holds nothing for long.
const maxHistoryWait = time.Minute

// historyWait parses the wait parameter of /history: a Go duration, at most
// maxHistoryWait; empty means no wait.
func historyWait(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > maxHistoryWait {
		return 0, fmt.Errorf("wait: %q is not a duration between 0 and %s", v, maxHistoryWait)
	}
	return d, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
