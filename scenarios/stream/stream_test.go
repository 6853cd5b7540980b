package stream

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeConn answers as node until reset is closed; then its next exchange
// fails with ECONNRESET, as a connection rehashed to another node does.
type fakeConn struct {
	node      string
	reset     chan struct{}
	exchanged chan uint64 // every answered exchange's seq, when not nil
}

func (f *fakeConn) Exchange(seq uint64, _ time.Time) (string, error) {
	select {
	case <-f.reset:
		return "", syscall.ECONNRESET
	default:
	}
	if f.exchanged != nil {
		select {
		case f.exchanged <- seq:
		default:
		}
	}
	return f.node, nil
}

func (f *fakeConn) Close() error { return nil }

// fakeDialer hands out connections answered by the nodes in turn; every
// connection it made is kept, so a test can reset one.
type fakeDialer struct {
	mu     sync.Mutex
	nodes  []string
	conns  []*fakeConn
	dialed chan *fakeConn
}

func (d *fakeDialer) dial(context.Context) (Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := &fakeConn{node: d.nodes[len(d.conns)%len(d.nodes)], reset: make(chan struct{}), exchanged: make(chan uint64, 1)}
	d.conns = append(d.conns, c)
	if d.dialed != nil {
		d.dialed <- c
	}
	return c, nil
}

func (d *fakeDialer) conn(i int) *fakeConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns[i]
}

// waitExchange waits until c has answered a message after the call.
func waitExchange(t *testing.T, c *fakeConn) {
	t.Helper()
	select {
	case <-c.exchanged: // drain one that may predate the call
	case <-time.After(5 * time.Second):
		t.Fatal("connection never exchanged")
	}
	select {
	case <-c.exchanged:
	case <-time.After(5 * time.Second):
		t.Fatal("connection never exchanged again")
	}
}

// A connection reset after a mark counts as lost in that mark's window,
// with its message in flight; it is replaced, and the stream's figures
// count the replacement by node.
func TestResetConnectionCountsAsLost(t *testing.T) {
	d := &fakeDialer{nodes: []string{"node1", "node2", "node3"}, dialed: make(chan *fakeConn, 10)}
	stopped := make(chan struct{})
	s, err := Start(context.Background(), Config{Connections: 3, Interval: time.Millisecond, Timeout: time.Second, Settle: time.Second}, d.dial, func() { close(stopped) })
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		<-d.dialed
	}
	waitExchange(t, d.conn(1))
	s.Mark("restart-speaker node2", time.Now())
	close(d.conn(1).reset) // node2's connection is reset
	var again *fakeConn
	select {
	case again = <-d.dialed:
	case <-time.After(5 * time.Second):
		t.Fatal("the lost connection was not opened again")
	}
	waitExchange(t, again)
	r := s.Stop()
	select {
	case <-stopped:
	default:
		t.Fatal("Stop did not run onStop")
	}
	if len(r.Windows) != 2 {
		t.Fatalf("windows %+v, want start and the mark", r.Windows)
	}
	before, during := r.Windows[0], r.Windows[1]
	if before.Lost != 0 || before.Unanswered != 0 || before.Open != 3 || before.Sent == 0 {
		t.Errorf("before the mark: %+v, want 3 open, messages sent, none lost", before)
	}
	if during.Label != "restart-speaker node2" || during.Lost != 1 || during.Unanswered != 1 || during.Reopened != 1 || during.Open != 3 {
		t.Errorf("after the mark: %+v, want 1 connection and 1 message lost, 1 reopened", during)
	}
	if len(during.Errors) != 1 || !strings.Contains(during.Errors[0], "reset") {
		t.Errorf("errors %v, want the reset", during.Errors)
	}
	if r.Connections != 4 || r.Nodes["node1"] != 2 || r.Nodes["node2"] != 1 || r.Nodes["node3"] != 1 {
		t.Errorf("connections %d by node %v, want 4: node1 twice (the replacement), node2, node3", r.Connections, r.Nodes)
	}
	if tot := r.Total(); tot.Lost != 1 || tot.Unanswered != 1 || tot.Sent != before.Sent+during.Sent {
		t.Errorf("total %+v", tot)
	}
	if again := s.Stop(); again.Connections != r.Connections {
		t.Errorf("a second Stop returned %+v", again)
	}
}

// A stream with nothing wrong loses nothing.
func TestSteadyStreamLosesNothing(t *testing.T) {
	d := &fakeDialer{nodes: []string{"node1", "node2"}, dialed: make(chan *fakeConn, 4)}
	s, err := Start(context.Background(), Config{Connections: 4, Interval: time.Millisecond, Timeout: time.Second, Settle: time.Second}, d.dial, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		<-d.dialed
		waitExchange(t, d.conn(i))
	}
	r := s.Stop()
	tot := r.Total()
	if tot.Lost != 0 || tot.Unanswered != 0 || tot.Sent < 4 || tot.Open != 4 || r.Connections != 4 {
		t.Errorf("figures %+v, connections %d", tot, r.Connections)
	}
	if w := r.Windows[0]; w.Nodes["node1"] != 2 || w.Nodes["node2"] != 2 {
		t.Errorf("connections by node %v, want 2 each", w.Nodes)
	}
}

// Start fails, and undoes the backend's set-up, when a connection cannot be
// opened within the settle time.
func TestStartFailsWhenUnanswered(t *testing.T) {
	undone := false
	_, err := Start(context.Background(), Config{Connections: 2, Interval: time.Millisecond, Timeout: 10 * time.Millisecond, Settle: 20 * time.Millisecond},
		func(context.Context) (Conn, error) { return nil, syscall.ECONNREFUSED }, func() { undone = true })
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "2 of 2 connections") {
		t.Errorf("error %v, want both connections refused", err)
	}
	if !undone {
		t.Error("onStop did not run")
	}
}

// The line protocol over loopback: a responder that resets its connections
// (SO_LINGER 0, as a node without the connection answers a rehashed one)
// costs the stream each of them, which it opens again.
func TestLineProtocolReset(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := Serve(ln, "node1")
	defer r.Close()
	dial := func(ctx context.Context) (Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		return NewLineConn(c), nil
	}
	s, err := Start(context.Background(), Config{Connections: 2, Interval: time.Millisecond, Timeout: time.Second, Settle: time.Second}, dial, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	s.Mark("reset", time.Now())
	r.mu.Lock()
	var conns []net.Conn
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	if len(conns) != 2 {
		t.Fatalf("responder holds %d connections, want 2", len(conns))
	}
	for _, c := range conns {
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	}
	// Wait for both replacements.
	deadline := time.After(5 * time.Second)
	for s.window(1).Reopened < 2 {
		select {
		case <-deadline:
			t.Fatal("the reset connections were not opened again")
		case <-time.After(time.Millisecond): // polling the stream's figures, which have no event to wait on
		}
	}
	res := s.Stop()
	w := res.Windows[1]
	if w.Lost != 2 || w.Unanswered != 2 || w.Reopened != 2 || res.Nodes["node1"] != 4 {
		t.Errorf("after the reset: %+v, connections by node %v; want 2 lost and reopened", w, res.Nodes)
	}
	if res.Windows[0].Lost != 0 {
		t.Errorf("before the reset: %+v", res.Windows[0])
	}
}

// Exchange refuses an answer that does not match the message.
func TestLineConnWrongAnswer(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		buf := make([]byte, 16)
		_, _ = b.Read(buf)
		_, _ = b.Write([]byte("node1 7\n"))
	}()
	if _, err := NewLineConn(a).Exchange(3, time.Now().Add(time.Second)); !errors.Is(err, ErrWrongAnswer) {
		t.Errorf("error %v, want ErrWrongAnswer", err)
	}
}

// window reads window i of a running stream.
func (s *Stream) window(i int) Window {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.windows[i]
}
