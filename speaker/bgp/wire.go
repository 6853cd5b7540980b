package bgp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// BGP message framing (RFC 4271 §4.1), as far as the relay needs it: it frames
// messages, swaps received UPDATEs for KEEPALIVEs and fixes next-hops in sent
// ones, and never decodes anything else.
const (
	headerLen    = 19
	maxMsgLen    = 65535 // RFC 8654 extended messages; without them peers stay within 4096
	msgOpen      = 1
	msgUpdate    = 2
	msgKeepalive = 4

	attrExtendedLength = 0x10
	attrNextHop        = 3
	attrMPReach        = 14
)

// keepalive is a complete KEEPALIVE message.
var keepalive = func() []byte {
	m := make([]byte, headerLen)
	for i := range 16 {
		m[i] = 0xff
	}
	binary.BigEndian.PutUint16(m[16:], headerLen)
	m[18] = msgKeepalive
	return m
}()

var errMalformed = errors.New("malformed BGP message")

// readMessage reads one whole message into buf (grown when too small) and returns it.
func readMessage(r io.Reader, buf []byte) ([]byte, error) {
	if cap(buf) < headerLen {
		buf = make([]byte, 4096)
	}
	buf = buf[:headerLen]
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(buf[16:18]))
	if n < headerLen {
		return nil, fmt.Errorf("%w: length %d", errMalformed, n)
	}
	if cap(buf) < n {
		grown := make([]byte, n)
		copy(grown, buf)
		buf = grown
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf[headerLen:]); err != nil {
		return nil, err
	}
	return buf, nil
}

// msgType returns a framed message's type.
func msgType(m []byte) byte { return m[18] }

// updateParts splits an UPDATE into its path attributes and its IPv4 NLRI.
func updateParts(m []byte) (attrs, nlri []byte, err error) {
	b := m[headerLen:]
	if len(b) < 2 {
		return nil, nil, errMalformed
	}
	wl := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+wl+2 {
		return nil, nil, errMalformed
	}
	b = b[2+wl:]
	al := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+al {
		return nil, nil, errMalformed
	}
	return b[2 : 2+al], b[2+al:], nil
}

// eachAttr calls fn with each path attribute's type and value (a slice into the
// message, so fn may rewrite it in place).
func eachAttr(attrs []byte, fn func(typ byte, value []byte)) error {
	for len(attrs) > 0 {
		if len(attrs) < 3 {
			return errMalformed
		}
		flags, typ := attrs[0], attrs[1]
		hl, l := 3, int(attrs[2])
		if flags&attrExtendedLength != 0 {
			if len(attrs) < 4 {
				return errMalformed
			}
			hl, l = 4, int(binary.BigEndian.Uint16(attrs[2:4]))
		}
		if len(attrs) < hl+l {
			return errMalformed
		}
		fn(typ, attrs[hl:hl+l])
		attrs = attrs[hl+l:]
	}
	return nil
}

// rewriteNextHops replaces, in place, every next-hop of an UPDATE that equals
// from with to: the NEXT_HOP attribute and MP_REACH_NLRI's next-hop (whose
// 16-byte form carries an IPv4 address IPv4-mapped, as GoBGP writes it). A
// 4-byte next-hop is rewritten only when to is IPv4.
func rewriteNextHops(m []byte, from, to netip.Addr) error {
	attrs, _, err := updateParts(m)
	if err != nil {
		return err
	}
	f4, fok := as4(from)
	t4, tok := as4(to)
	f16, t16 := from.As16(), to.As16()
	return eachAttr(attrs, func(typ byte, v []byte) {
		switch typ {
		case attrNextHop:
			if len(v) == 4 && fok && tok && [4]byte(v) == f4 {
				copy(v, t4[:])
			}
		case attrMPReach:
			if len(v) < 4 {
				return
			}
			nh := v[4:]
			if n := int(v[3]); n <= len(nh) {
				nh = nh[:n]
			} else {
				return
			}
			switch {
			case len(nh) == 4 && fok && tok && [4]byte(nh) == f4:
				copy(nh, t4[:])
			case len(nh) >= 16 && [16]byte(nh[:16]) == f16:
				copy(nh[:16], t16[:])
			}
		}
	})
}

// as4 returns a's IPv4 form, IPv4-mapped addresses included.
func as4(a netip.Addr) ([4]byte, bool) {
	if a = a.Unmap(); a.Is4() {
		return a.As4(), true
	}
	return [4]byte{}, false
}

// countPrefixes counts the prefixes an UPDATE announces: its IPv4 NLRI and the
// NLRI of an IPv4 or IPv6 unicast MP_REACH_NLRI (no ADD-PATH: the speaker never
// negotiates it).
func countPrefixes(m []byte) (int, error) {
	attrs, nlri, err := updateParts(m)
	if err != nil {
		return 0, err
	}
	n, err := countNLRI(nlri)
	if err != nil {
		return 0, err
	}
	var inner error
	err = eachAttr(attrs, func(typ byte, v []byte) {
		if typ != attrMPReach || len(v) < 5 || v[2] != 1 {
			return
		}
		rest := v[4:]
		if int(v[3])+1 > len(rest) {
			inner = errMalformed
			return
		}
		c, err := countNLRI(rest[int(v[3])+1:])
		if err != nil {
			inner = err
		}
		n += c
	})
	if err == nil {
		err = inner
	}
	return n, err
}

func countNLRI(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		l := (int(b[0]) + 7) / 8
		if len(b) < 1+l {
			return n, errMalformed
		}
		b = b[1+l:]
		n++
	}
	return n, nil
}
