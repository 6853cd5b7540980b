// Command echo is the backend behind the test Services of the kind
// scenarios: an HTTP server that answers with the pod, node and client
// address of each request, and a TCP echo server. Its image is built with
// the others (make images: ecmplb/echo).
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	httpAddr := flag.String("http-addr", ":8080", "HTTP listen address (empty: off)")
	tcpAddr := flag.String("tcp-addr", ":9000", "TCP echo listen address (empty: off)")
	idle := flag.Duration("idle-timeout", time.Minute, "close a TCP echo connection idle this long")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	id := Identity{Pod: os.Getenv("POD_NAME"), Node: os.Getenv("NODE_NAME")}
	if id.Pod == "" {
		id.Pod, _ = os.Hostname()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	errc := make(chan error, 2)
	if *tcpAddr != "" {
		l, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			log.Error("tcp echo", "err", err)
			os.Exit(1)
		}
		go func() { <-ctx.Done(); l.Close() }()
		go func() { errc <- ServeTCPEcho(l, *idle, log) }()
	}
	if *httpAddr != "" {
		srv := &http.Server{Addr: *httpAddr, Handler: HTTPHandler(id), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		go func() {
			if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
				return
			}
			errc <- nil
		}()
	}
	log.Info("echo serving", "http", *httpAddr, "tcp", *tcpAddr, "pod", id.Pod, "node", id.Node)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			log.Error("echo stopped", "err", err)
			os.Exit(1)
		}
	}
}
