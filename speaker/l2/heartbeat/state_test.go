package heartbeat

import (
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestSendersAccept(t *testing.T) {
	s := senders{}
	steps := []struct {
		m    message
		at   int
		want bool
	}{
		{message{Node: "a", Incarnation: 1, Seq: 5}, 0, true},    // first heard: any sequence
		{message{Node: "a", Incarnation: 1, Seq: 6}, 200, true},  // next round
		{message{Node: "a", Incarnation: 1, Seq: 6}, 210, false}, // duplicate
		{message{Node: "a", Incarnation: 1, Seq: 4}, 220, false}, // overtaken, or replayed
		{message{Node: "a", Incarnation: 1, Seq: 9}, 400, true},  // rounds lost in between
		{message{Node: "a", Incarnation: 2, Seq: 1}, 600, true},  // restarted
		{message{Node: "a", Incarnation: 2, Seq: 1}, 610, false},
		{message{Node: "b", Incarnation: 2, Seq: 1}, 620, true}, // per node
	}
	for i, st := range steps {
		if got := s.accept(st.m, at(st.at)); got != st.want {
			t.Fatalf("step %d %+v: accept = %v, want %v", i, st.m, got, st.want)
		}
	}
	if seq, hold := s.echo("a", at(700)); seq != 1 || hold != 100*time.Millisecond {
		t.Errorf("echo a = %d, %v; want 1, 100ms (the last accepted, not the duplicate at 610)", seq, hold)
	}
	if seq, hold := s.echo("c", at(700)); seq != 0 || hold != 0 {
		t.Errorf("echo of a node never heard = %d, %v", seq, hold)
	}
	if _, hold := s.echo("a", at(500)); hold != 0 {
		t.Errorf("hold %v for a receipt after now, want 0", hold)
	}
	s.forget(at(615))
	if _, ok := s["a"]; ok {
		t.Error("a, last heard at 600, kept after forget(615)")
	}
	if _, ok := s["b"]; !ok {
		t.Error("b, heard at 620, forgotten by forget(615)")
	}
	// Forgotten, a node is new again: whatever it sends next is accepted.
	if !s.accept(message{Node: "a", Incarnation: 2, Seq: 1}, at(800)) {
		t.Error("forgotten node not accepted again")
	}
}

func TestSendLogRTT(t *testing.T) {
	var l sendLog
	for seq := uint64(1); seq <= 100; seq++ {
		l.sent(seq, at(int(seq)*200))
	}
	for _, tc := range []struct {
		name string
		seq  uint64
		hold time.Duration
		at   int
		want time.Duration
		ok   bool
	}{
		{"latest", 100, 3 * time.Millisecond, 20005, 2 * time.Millisecond, true},
		{"held a round", 99, 199 * time.Millisecond, 20000, time.Millisecond, true},
		{"no echo", 0, 0, 20000, 0, false},
		{"overwritten in the ring", 30, 0, 20000, 0, false},
		{"never sent", 101, 0, 20000, 0, false},
		{"negative: peer's clock fast", 100, 10 * time.Millisecond, 20005, 0, false},
	} {
		got, ok := l.rtt(tc.seq, tc.hold, at(tc.at))
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%s: rtt = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestConfig(t *testing.T) {
	c, err := Config{Node: "n"}.withDefaults()
	if err != nil || c.Port != DefaultPort || c.Interval != DefaultInterval {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{}, "node name is required"},
		{Config{Node: strings.Repeat("x", 254)}, "more than 253"},
		{Config{Node: "\xff"}, "UTF-8"},
		{Config{Node: "n", Port: 70000}, "not a UDP port"},
		{Config{Node: "n", Port: -1}, "not a UDP port"},
		{Config{Node: "n", Interval: time.Millisecond}, "below the minimum"},
	} {
		if _, err := New(tc.c, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error with %q", tc.c, err, tc.want)
		}
	}
}
