package stream

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The line protocol: the client sends "<seq>\n", the responder answers
// "<node> <seq>\n" on the same connection, which stays open.

// Responder answers stream connections on a listener with its node's name.
type Responder struct {
	ln    net.Listener
	node  string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	done  bool
}

// Serve answers stream connections accepted on ln as node until Close.
func Serve(ln net.Listener, node string) *Responder {
	r := &Responder{ln: ln, node: node, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.accept()
	return r
}

func (r *Responder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.done {
			r.mu.Unlock()
			_ = c.Close()
			return
		}
		r.conns[c] = true
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serve(c)
	}
}

func (r *Responder) serve(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		_ = c.Close()
	}()
	rd := bufio.NewReader(c)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "%s %s", r.node, line); err != nil {
			return
		}
	}
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (r *Responder) Close() error {
	err := r.ln.Close()
	r.mu.Lock()
	r.done = true
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

// LineConn is the client side of the line protocol over c.
type LineConn struct {
	c  net.Conn
	rd *bufio.Reader
}

// NewLineConn speaks the line protocol over c.
func NewLineConn(c net.Conn) *LineConn { return &LineConn{c: c, rd: bufio.NewReader(c)} }

// Exchange implements Conn.
func (l *LineConn) Exchange(seq uint64, deadline time.Time) (string, error) {
	if err := l.c.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(l.c, "%d\n", seq); err != nil {
		return "", err
	}
	line, err := l.rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	node, n, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
	if got, err := strconv.ParseUint(n, 10, 64); !ok || err != nil || got != seq {
		return "", fmt.Errorf("%w: sent %d, got %q", ErrWrongAnswer, seq, line)
	}
	return node, nil
}

// Close implements Conn.
func (l *LineConn) Close() error { return l.c.Close() }
