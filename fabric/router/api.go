package router

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ecmplb/ecmplb/fabric/control"
)

// Handler serves the control API (see package control for the endpoints).
func (r *Router) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-r.started:
			writeJSON(w, map[string]string{"router": r.cfg.Name, "status": "ok"})
		default:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /rib", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query().Get("prefix")
		if q == "" {
			writeJSON(w, r.rib.All())
			return
		}
		if p, err := netip.ParsePrefix(q); err == nil {
			if s, ok := r.rib.Get(p); ok {
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
		if s, ok := r.rib.Lookup(a); ok {
			writeJSON(w, s)
			return
		}
		http.NotFound(w, req)
	})
	mux.HandleFunc("GET /summary", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, r.rib.Summary()) })
	mux.HandleFunc("GET /history", func(w http.ResponseWriter, req *http.Request) {
		after, _ := strconv.ParseUint(req.URL.Query().Get("after"), 10, 64)
		writeJSON(w, r.rib.History(after))
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, req *http.Request) {
		after, _ := strconv.ParseUint(req.URL.Query().Get("after"), 10, 64)
		writeJSON(w, r.events.after(after))
	})
	mux.HandleFunc("GET /neighbors", func(w http.ResponseWriter, req *http.Request) {
		n, err := r.Neighbors(req.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, n)
	})
	mux.HandleFunc("GET /bfd", func(w http.ResponseWriter, _ *http.Request) {
		out := []control.BFDSession{}
		if r.bfd != nil {
			out = r.bfd.Sessions()
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
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
