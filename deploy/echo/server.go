package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Reply is what the HTTP server answers on every path but /healthz: who
// served the request and whom it came from, so a test behind a Service sees
// which pod and node its connection reached and whether the client address
// was preserved.
type Reply struct {
	Pod    string `json:"pod"`
	Node   string `json:"node"`
	Client string `json:"client"`
	Host   string `json:"host"`
	Path   string `json:"path"`
}

// Identity names the pod and node a server runs on (downward API).
type Identity struct {
	Pod, Node string
}

// HTTPHandler serves /healthz and a JSON Reply on every other path.
func HTTPHandler(id Identity) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(Reply{Pod: id.Pod, Node: id.Node, Client: r.RemoteAddr, Host: r.Host, Path: r.URL.Path})
	})
	return mux
}

// ServeTCPEcho accepts connections on l until it is closed and writes back
// every byte it reads; a connection idle for longer than idle is closed.
func ServeTCPEcho(l net.Listener, idle time.Duration, log *slog.Logger) error {
	for {
		c, err := l.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		go echo(c, idle, log)
	}
}

func echo(c net.Conn, idle time.Duration, log *slog.Logger) {
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		_ = c.SetDeadline(time.Now().Add(idle))
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				log.Debug("tcp echo write", "client", c.RemoteAddr().String(), "err", werr)
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Debug("tcp echo read", "client", c.RemoteAddr().String(), "err", err)
			}
			return
		}
	}
}
