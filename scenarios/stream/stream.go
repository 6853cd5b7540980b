// Package stream holds a steady client stream open across a scenario's
// steps: a number of long-lived connections to a Service, each sending a
// sequence-numbered message every interval and waiting for the node's echo.
// It counts what the faults in between cost the stream: connections lost
// (reset, closed, or silent past the timeout, as a rehash to another node
// leaves them), messages unanswered, and which node answered each
// connection. The counts are kept per window: a window begins at each Mark
// (the runner marks every fault and repair), so each restart gets its own
// figures.
//
// A backend supplies the connections (Dial returning a Conn); this package
// also has the line protocol the lab's responders speak (Serve, LineConn).
package stream

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Config is what a stream holds open.
type Config struct {
	// Connections is how many connections the stream holds.
	Connections int
	// Interval is the time between two messages on one connection.
	Interval time.Duration
	// Timeout is how long a message may go unanswered; past it the message
	// and its connection count as lost.
	Timeout time.Duration
	// Settle is how long Start keeps trying to open every connection (a
	// node's data plane may lag the routes).
	Settle time.Duration
}

// Conn is one connection of a stream as a backend speaks to its responders.
type Conn interface {
	// Exchange sends message seq and waits until deadline for its answer;
	// it returns the node that answered.
	Exchange(seq uint64, deadline time.Time) (node string, err error)
	// Close closes the connection.
	Close() error
}

// Dial opens one connection of the stream.
type Dial func(ctx context.Context) (Conn, error)

// Window is the stream's figures from one mark to the next.
type Window struct {
	// Label names what began the window ("start", or the fault).
	Label string
	// Start is when the window began.
	Start time.Time
	// Open is how many connections were open when the window began.
	Open int
	// Lost counts the connections that broke in the window: reset, closed
	// by the far end, answered by another node, or silent past the timeout.
	Lost int
	// Reopened counts the connections opened again in the window after one
	// was lost (each lost connection is replaced, so every fault meets the
	// full stream).
	Reopened int
	// Sent counts the messages sent in the window; Unanswered the messages
	// whose loss showed in it (each lost connection loses the message in
	// flight).
	Sent, Unanswered int
	// Nodes counts, per node, the connections it answered in the window.
	Nodes map[string]int
	// Errors holds the first few reasons connections were lost.
	Errors []string
}

// maxErrors bounds Window.Errors.
const maxErrors = 3

// Result is a stopped stream's figures.
type Result struct {
	// Windows, in order; the first begins when every connection was open.
	Windows []Window
	// Connections counts every connection the stream opened (reopened ones
	// included); Nodes counts them by the node that answered them.
	Connections int
	Nodes       map[string]int
}

// Total sums the windows.
func (r Result) Total() Window {
	t := Window{Label: "whole stream", Nodes: map[string]int{}}
	for i, w := range r.Windows {
		if i == 0 {
			t.Start, t.Open = w.Start, w.Open
		}
		t.Lost += w.Lost
		t.Reopened += w.Reopened
		t.Sent += w.Sent
		t.Unanswered += w.Unanswered
		for _, e := range w.Errors {
			if len(t.Errors) < maxErrors {
				t.Errors = append(t.Errors, e)
			}
		}
	}
	maps.Copy(t.Nodes, r.Nodes)
	return t
}

// Stream is a running stream.
type Stream struct {
	cfg    Config
	dial   Dial
	onStop func()
	ctx    context.Context
	cancel context.CancelFunc
	stop   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	windows []Window
	open    int
	opened  int
	nodes   map[string]int

	stopOnce sync.Once
	result   Result
}

// Start opens cfg.Connections connections with dial, each answered once,
// retrying for up to cfg.Settle, and then sends on each every cfg.Interval
// until Stop. onStop (may be nil) runs once every connection is closed, on
// Stop or when Start fails: it undoes what the backend set up for the
// stream.
func Start(ctx context.Context, cfg Config, dial Dial, onStop func()) (*Stream, error) {
	if cfg.Connections < 1 || cfg.Interval <= 0 || cfg.Timeout <= 0 {
		if onStop != nil {
			onStop()
		}
		return nil, fmt.Errorf("stream: want at least one connection and a positive interval and timeout, got %+v", cfg)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Stream{cfg: cfg, dial: dial, onStop: onStop, ctx: sctx, cancel: cancel, stop: make(chan struct{}), nodes: map[string]int{}}
	type opened struct {
		c    Conn
		node string
		err  error
	}
	results := make(chan opened, cfg.Connections)
	deadline := time.Now().Add(cfg.Settle)
	for range cfg.Connections {
		go func() {
			var o opened
			for {
				o.c, o.node, o.err = s.connect(ctx)
				if o.err == nil || time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(cfg.Interval): // the next attempt, not a wait for a result
				}
			}
			results <- o
		}()
	}
	var conns []opened
	var errs []error
	for range cfg.Connections {
		o := <-results
		if o.err != nil {
			errs = append(errs, o.err)
			continue
		}
		conns = append(conns, o)
	}
	if len(errs) > 0 {
		for _, o := range conns {
			_ = o.c.Close()
		}
		cancel()
		if onStop != nil {
			onStop()
		}
		return nil, fmt.Errorf("stream: %d of %d connections not answered within %v: %w", len(errs), cfg.Connections, cfg.Settle, errs[0])
	}
	s.open, s.opened = len(conns), len(conns)
	for _, o := range conns {
		s.nodes[o.node]++
	}
	s.windows = []Window{{Label: "start", Start: time.Now(), Open: s.open, Nodes: map[string]int{}}}
	for _, o := range conns {
		s.wg.Add(1)
		go s.run(o.c, o.node)
	}
	return s, nil
}

// connect dials one connection and has its first message answered.
func (s *Stream) connect(ctx context.Context) (Conn, string, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return nil, "", err
	}
	node, err := c.Exchange(0, time.Now().Add(s.cfg.Timeout))
	if err != nil {
		_ = c.Close()
		return nil, "", err
	}
	return c, node, nil
}

// Mark begins a new window named label at time at: the figures from then on
// are the fault's.
func (s *Stream) Mark(label string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows = append(s.windows, Window{Label: label, Start: at, Open: s.open, Nodes: map[string]int{}})
}

// run sends on one connection until Stop, replacing it when it is lost.
func (s *Stream) run(c Conn, node string) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	seq := uint64(1)
	counted := -1 // the last window this connection was counted in by node
	for {
		select {
		case <-s.stop:
			_ = c.Close()
			return
		case <-t.C:
		}
		w := s.sent()
		got, err := c.Exchange(seq, time.Now().Add(s.cfg.Timeout))
		seq++
		if err == nil && got != node {
			err = fmt.Errorf("connection answered by %s, then by %s", node, got)
		}
		if err == nil {
			s.answered(w, node, &counted)
			continue
		}
		s.lost(err)
		_ = c.Close()
		if c, node = s.reopen(); c == nil {
			return
		}
		seq, counted = 1, -1
	}
}

func (s *Stream) sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := len(s.windows) - 1
	s.windows[w].Sent++
	return w
}

func (s *Stream) answered(w int, node string, counted *int) {
	if *counted == w {
		return
	}
	*counted = w
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows[w].Nodes[node]++
}

// lost counts a lost connection and its message in the window where the
// loss shows (a message sent just before a mark and lost after it is the
// marked fault's).
func (s *Stream) lost(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := len(s.windows) - 1
	s.windows[w].Unanswered++
	s.windows[w].Lost++
	if len(s.windows[w].Errors) < maxErrors {
		s.windows[w].Errors = append(s.windows[w].Errors, err.Error())
	}
	s.open--
}

// reopen opens a connection again, trying every interval until it is
// answered or the stream stops (nil).
func (s *Stream) reopen() (Conn, string) {
	for {
		select {
		case <-s.stop:
			return nil, ""
		default:
		}
		c, node, err := s.connect(s.ctx)
		if err == nil {
			s.mu.Lock()
			s.windows[len(s.windows)-1].Reopened++
			s.open++
			s.opened++
			s.nodes[node]++
			s.mu.Unlock()
			return c, node
		}
		select {
		case <-s.stop:
			return nil, ""
		case <-time.After(s.cfg.Interval): // the next attempt, not a wait for a result
		}
	}
}

// Stop ends the stream: no new message is sent, the ones in flight are
// answered or time out, every connection is closed, and onStop runs. It
// returns the figures; a second call returns the same.
func (s *Stream) Stop() Result {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.cancel() // ends dials of connections being opened again
		s.wg.Wait()
		if s.onStop != nil {
			s.onStop()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.result = Result{Windows: slices.Clone(s.windows), Connections: s.opened, Nodes: maps.Clone(s.nodes)}
	})
	return s.result
}

// ErrWrongAnswer is returned by a Conn whose answer does not match the
// message sent.
var ErrWrongAnswer = errors.New("answer does not match the message")
