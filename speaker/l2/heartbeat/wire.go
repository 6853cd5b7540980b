package heartbeat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"time"
	"unicode/utf8"
)

// Wire format (see doc.go): a fixed header, the sender's node name, and an
// HMAC-SHA256 over both when the flag says so. Big-endian throughout.
const (
	magic      = "ELHB"
	version    = 1
	headerLen  = 36
	macLen     = sha256.Size
	maxNodeLen = 253 // a Node's name is a DNS subdomain
	// maxDatagram is the largest valid datagram; anything longer is dropped
	// unread, so a peer cannot make this node hash or copy more.
	maxDatagram = headerLen + maxNodeLen + macLen

	flagMAC = 1 << 0 // an HMAC-SHA256 follows the name

	stateRenewing = 1 << 0 // state byte: the sender's Lease renewals are confirmed

	// maxHold caps the echo hold time (microseconds in 32 bits: 71 minutes).
	maxHold = time.Duration(1<<32-1) * time.Microsecond
)

// message is one heartbeat datagram's content.
type message struct {
	Node        string // the sender's node name
	Incarnation uint64 // random per Run: a restarted sender starts a new sequence
	Seq         uint64 // this send round, from 1, one per Interval
	// EchoSeq is the last Seq the sender accepted from the datagram's
	// destination (0: none yet), and EchoHold how long before this send it
	// arrived: the destination gets its round trip time from them.
	EchoSeq  uint64
	EchoHold time.Duration
	// Renewing: the sender's own liveness renewals (its Lease) are
	// confirmed now (state bit 0).
	Renewing bool
}

// appendMessage encodes m onto dst, with an HMAC when key is not empty.
func appendMessage(dst []byte, m message, key []byte) []byte {
	start := len(dst)
	var flags byte
	if len(key) > 0 {
		flags |= flagMAC
	}
	dst = append(dst, magic...)
	var state byte
	if m.Renewing {
		state |= stateRenewing
	}
	dst = append(dst, version, flags, byte(len(m.Node)), state)
	dst = binary.BigEndian.AppendUint64(dst, m.Incarnation)
	dst = binary.BigEndian.AppendUint64(dst, m.Seq)
	dst = binary.BigEndian.AppendUint64(dst, m.EchoSeq)
	dst = binary.BigEndian.AppendUint32(dst, uint32(min(max(m.EchoHold, 0), maxHold)/time.Microsecond))
	dst = append(dst, m.Node...)
	if len(key) > 0 {
		dst = appendMAC(dst, dst[start:], key)
	}
	return dst
}

func appendMAC(dst, content, key []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(content)
	return h.Sum(dst)
}

// Reasons a received datagram is dropped (the reason label of
// ecmplb_speaker_l2_heartbeat_dropped_total).
const (
	reasonShort     = "short"     // shorter than its header and name
	reasonOversized = "oversized" // longer than any valid datagram
	reasonMagic     = "magic"     // not a heartbeat at all
	reasonVersion   = "version"   // a version this build does not speak
	reasonMalformed = "malformed" // bad name length or encoding, trailing bytes
	reasonAuth      = "auth"      // key set here, and the MAC missing or wrong
	reasonOwnName   = "own_name"  // carries this node's own name
	reasonStale     = "stale"     // a sequence number already seen (duplicate, reordered, replayed)
)

var dropReasons = []string{reasonShort, reasonOversized, reasonMagic, reasonVersion, reasonMalformed,
	reasonAuth, reasonOwnName, reasonStale}

// dropError says why a datagram was rejected.
type dropError struct{ reason string }

func (e *dropError) Error() string { return "heartbeat datagram dropped: " + e.reason }

func drop(reason string) error { return &dropError{reason} }

// decode parses and, when key is not empty, authenticates a datagram. It
// never panics and never keeps b. Without a key, a MAC is ignored: nodes can
// be given the key one by one without the ones still keyless dropping them.
func decode(b, key []byte) (message, error) {
	if len(b) > maxDatagram {
		return message{}, drop(reasonOversized)
	}
	if m := min(len(b), len(magic)); string(b[:m]) != magic[:m] {
		return message{}, drop(reasonMagic)
	}
	switch {
	case len(b) > 4 && b[4] != version:
		return message{}, drop(reasonVersion)
	case len(b) < headerLen:
		return message{}, drop(reasonShort)
	}
	flags, n := b[5], int(b[6])
	want := headerLen + n
	if flags&flagMAC != 0 {
		want += macLen
	}
	switch {
	case flags&^flagMAC != 0, n == 0, binary.BigEndian.Uint64(b[16:]) == 0:
		return message{}, drop(reasonMalformed)
	case len(b) < want:
		return message{}, drop(reasonShort)
	case len(b) > want:
		return message{}, drop(reasonMalformed)
	}
	if len(key) > 0 {
		if flags&flagMAC == 0 {
			return message{}, drop(reasonAuth)
		}
		var buf [macLen]byte
		if !hmac.Equal(appendMAC(buf[:0], b[:headerLen+n], key), b[headerLen+n:]) {
			return message{}, drop(reasonAuth)
		}
	}
	name := b[headerLen : headerLen+n]
	if !utf8.Valid(name) {
		return message{}, drop(reasonMalformed)
	}
	return message{
		Node:        string(name),
		Incarnation: binary.BigEndian.Uint64(b[8:]),
		Seq:         binary.BigEndian.Uint64(b[16:]),
		EchoSeq:     binary.BigEndian.Uint64(b[24:]),
		EchoHold:    time.Duration(binary.BigEndian.Uint32(b[32:])) * time.Microsecond,
		Renewing:    b[7]&stateRenewing != 0,
	}, nil
}
