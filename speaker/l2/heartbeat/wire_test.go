package heartbeat

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("cluster secret")

func sample() message {
	return message{Node: "worker-1", Incarnation: 0x0102030405060708, Seq: 42, EchoSeq: 41, EchoHold: 1234 * time.Microsecond}
}

func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("n", maxNodeLen)
	for _, tc := range []struct {
		name string
		m    message
		key  []byte
	}{
		{"plain", sample(), nil},
		{"keyed", sample(), testKey},
		{"longest name, keyed", message{Node: long, Incarnation: ^uint64(0), Seq: ^uint64(0), EchoSeq: ^uint64(0), EchoHold: maxHold}, testKey},
		{"no echo", message{Node: "n", Seq: 1}, nil},
		{"unicode name", message{Node: "nœud-é", Seq: 7}, nil},
		{"renewing", message{Node: "n", Seq: 3, Renewing: true}, testKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendMessage(nil, tc.m, tc.key)
			if len(b) > maxDatagram {
				t.Fatalf("%d bytes, above maxDatagram %d", len(b), maxDatagram)
			}
			got, err := decode(b, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.m {
				t.Fatalf("decoded %+v, want %+v", got, tc.m)
			}
		})
	}
}

// The hold is sent in microseconds in 32 bits: it saturates rather than
// wrapping to a small value, which would make a huge round trip look small.
func TestHoldSaturates(t *testing.T) {
	m := sample()
	for _, tc := range []struct{ in, want time.Duration }{
		{-time.Second, 0}, {1500 * time.Nanosecond, time.Microsecond}, {2 * time.Hour, maxHold},
	} {
		m.EchoHold = tc.in
		got, err := decode(appendMessage(nil, m, nil), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.EchoHold != tc.want {
			t.Errorf("hold %v sent as %v, want %v", tc.in, got.EchoHold, tc.want)
		}
	}
}

// The encoding is fixed: this is version 1 on the wire. Changing it breaks
// speakers of mixed versions during an upgrade: bump the version instead.
func TestWireBytes(t *testing.T) {
	m := message{Node: "ab", Incarnation: 1, Seq: 2, EchoSeq: 3, EchoHold: 4 * time.Microsecond}
	want := []byte("ELHB\x01\x00\x02\x00" +
		"\x00\x00\x00\x00\x00\x00\x00\x01" +
		"\x00\x00\x00\x00\x00\x00\x00\x02" +
		"\x00\x00\x00\x00\x00\x00\x00\x03" +
		"\x00\x00\x00\x04" + "ab")
	if got := appendMessage(nil, m, nil); !bytes.Equal(got, want) {
		t.Fatalf("encoded\n% x\nwant\n% x", got, want)
	}
	keyed := appendMessage(nil, m, testKey)
	if keyed[5] != flagMAC || len(keyed) != len(want)+macLen || !bytes.Equal(keyed[6:len(want)], want[6:]) {
		t.Fatalf("keyed encoding % x", keyed)
	}
}

func reason(err error) string {
	var de *dropError
	if errors.As(err, &de) {
		return de.reason
	}
	return ""
}

func TestDecodeRejects(t *testing.T) {
	plain := appendMessage(nil, sample(), nil)
	keyed := appendMessage(nil, sample(), testKey)
	mutate := func(b []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(b)) }
	for _, tc := range []struct {
		name string
		b    []byte
		key  []byte
		want string
	}{
		{"empty", nil, nil, reasonShort},
		{"magic prefix only", []byte("EL"), nil, reasonShort},
		{"other protocol", []byte("GET / HTTP/1.1\r\n"), nil, reasonMagic},
		{"one wrong byte", []byte("X"), nil, reasonMagic},
		{"magic, wrong version", []byte("ELHB\x02"), nil, reasonVersion},
		{"wrong version, full", mutate(plain, func(b []byte) []byte { b[4] = 2; return b }), nil, reasonVersion},
		{"header cut", plain[:headerLen-1], nil, reasonShort},
		{"name cut", plain[:len(plain)-1], nil, reasonShort},
		{"trailing byte", append(bytes.Clone(plain), 0), nil, reasonMalformed},
		{"empty name", mutate(plain, func(b []byte) []byte { b[6] = 0; return b[:headerLen] }), nil, reasonMalformed},
		{"unknown flag", mutate(plain, func(b []byte) []byte { b[5] = 2; return b }), nil, reasonMalformed},
		{"sequence 0", mutate(plain, func(b []byte) []byte { b[23] = 0; return b }), nil, reasonMalformed},
		{"name not UTF-8", mutate(plain, func(b []byte) []byte { b[headerLen] = 0xff; return b }), nil, reasonMalformed},
		{"oversized", make([]byte, maxDatagram+1), nil, reasonOversized},
		{"oversized, valid start", append(bytes.Clone(plain), make([]byte, maxDatagram)...), nil, reasonOversized},
		{"key here, no MAC", plain, testKey, reasonAuth},
		{"wrong key", keyed, []byte("other secret"), reasonAuth},
		{"MAC flipped", mutate(keyed, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), testKey, reasonAuth},
		{"content changed under MAC", mutate(keyed, func(b []byte) []byte { b[23]++; return b }), testKey, reasonAuth},
		{"MAC cut", keyed[:len(keyed)-1], testKey, reasonShort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decode(tc.b, tc.key)
			if got := reason(err); got != tc.want {
				t.Fatalf("decode = %+v, %v; want reason %q", m, err, tc.want)
			}
		})
	}
	// Without a key, a MAC is ignored (a keyed node's datagram is accepted).
	if m, err := decode(keyed, nil); err != nil || m != sample() {
		t.Fatalf("keyed datagram without a key: %+v, %v", m, err)
	}
}

// FuzzDecode: decode never panics, rejects with a known reason, and what it
// accepts encodes back to the same bytes (a MAC'd datagram with the key).
// `go test` runs the seeds below and those in testdata/fuzz/FuzzDecode;
// `go test -fuzz FuzzDecode ./speaker/l2/heartbeat/` searches further.
func FuzzDecode(f *testing.F) {
	f.Add(appendMessage(nil, sample(), nil), false)
	f.Add(appendMessage(nil, sample(), testKey), true)
	f.Add(appendMessage(nil, sample(), testKey), false)
	f.Add([]byte("ELHB\x01\x01\xfd\x00"), true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, b []byte, keyed bool) {
		var key []byte
		if keyed {
			key = testKey
		}
		orig := bytes.Clone(b)
		m, err := decode(b, key)
		if !bytes.Equal(b, orig) {
			t.Fatal("decode modified its input")
		}
		if err != nil {
			if r := reason(err); r == "" {
				t.Fatalf("error without a drop reason: %v", err)
			}
			return
		}
		if len(b) > maxDatagram || len(m.Node) == 0 || len(m.Node) > maxNodeLen || m.Seq == 0 {
			t.Fatalf("accepted %+v from %d bytes", m, len(b))
		}
		if b[5] == 0 && keyed {
			t.Fatal("accepted a datagram without a MAC with a key set")
		}
		// Re-encoding gives the input back, up to the state byte's unused
		// bits and, without a key, the MAC that was ignored.
		again := appendMessage(nil, m, key)
		want := bytes.Clone(b)
		want[7] &= stateRenewing
		if !keyed {
			want = want[:headerLen+len(m.Node)]
			want[5] = 0
		}
		if !bytes.Equal(again, want) {
			t.Fatalf("re-encoded\n% x\nfrom\n% x", again, want)
		}
	})
}
