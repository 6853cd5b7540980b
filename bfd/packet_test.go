package bfd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func validPacket() ControlPacket {
	return ControlPacket{
		Version:                   1,
		Diag:                      DiagControlDetectionTimeExpired,
		State:                     StateUp,
		Poll:                      true,
		DetectMult:                3,
		MyDiscriminator:           0x11223344,
		YourDiscriminator:         0x55667788,
		DesiredMinTxInterval:      300000,
		RequiredMinRxInterval:     250000,
		RequiredMinEchoRxInterval: 50000,
	}
}

func TestMarshalWireFormat(t *testing.T) {
	p := validPacket()
	got := p.Marshal()
	want := []byte{
		0x21,  // version 1, diag 1
		0xe0,  // state Up (3<<6), P
		3, 24, // detect mult, length
		0x11, 0x22, 0x33, 0x44,
		0x55, 0x66, 0x77, 0x88,
		0x00, 0x04, 0x93, 0xe0, // 300000
		0x00, 0x03, 0xd0, 0x90, // 250000
		0x00, 0x00, 0xc3, 0x50, // 50000
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal = % x, want % x", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, mod := range []func(*ControlPacket){
		func(*ControlPacket) {},
		func(p *ControlPacket) { p.Poll, p.Final = false, true },
		func(p *ControlPacket) { p.Poll, p.ControlPlaneIndependent, p.Demand = false, true, true },
		func(p *ControlPacket) { p.State, p.YourDiscriminator = StateDown, 0 },
		func(p *ControlPacket) { p.State, p.YourDiscriminator, p.Diag = StateAdminDown, 0, DiagAdminDown },
		func(p *ControlPacket) { p.DesiredMinTxInterval, p.RequiredMinRxInterval = 0xffffffff, 0 },
	} {
		p := validPacket()
		mod(&p)
		got, err := ParseControlPacket(p.Marshal())
		if err != nil {
			t.Fatalf("parse %+v: %v", p, err)
		}
		if got != p {
			t.Fatalf("round trip: got %+v, want %+v", got, p)
		}
	}
}

// TestParseReceiveChecks covers every packet-level check of RFC 5880 6.8.6.
func TestParseReceiveChecks(t *testing.T) {
	base := func() []byte { p := validPacket(); return p.Marshal() }
	tests := []struct {
		name string
		mod  func([]byte) []byte
		want error // nil: accepted
	}{
		{"valid", func(b []byte) []byte { return b }, nil},
		{"padding beyond length ignored", func(b []byte) []byte { return append(b, 0, 0, 0, 0) }, nil},
		{"empty", func([]byte) []byte { return nil }, ErrShort},
		{"23 bytes", func(b []byte) []byte { return b[:23] }, ErrShort},
		{"version 0", func(b []byte) []byte { b[0] = 0<<5 | b[0]&0x1f; return b }, ErrVersion},
		{"version 2", func(b []byte) []byte { b[0] = 2<<5 | b[0]&0x1f; return b }, ErrVersion},
		{"version 7", func(b []byte) []byte { b[0] = 7<<5 | b[0]&0x1f; return b }, ErrVersion},
		{"length below 24", func(b []byte) []byte { b[3] = 23; return b }, ErrLength},
		{"length 0", func(b []byte) []byte { b[3] = 0; return b }, ErrLength},
		{"length beyond payload", func(b []byte) []byte { b[3] = 28; return b }, ErrLength},
		{"length below 26 with A bit", func(b []byte) []byte { b[1] |= 0x04; return b }, ErrLength},
		{"detect mult 0", func(b []byte) []byte { b[2] = 0; return b }, ErrDetectMult},
		{"multipoint", func(b []byte) []byte { b[1] |= 0x01; return b }, ErrMultipoint},
		{"my discriminator 0", func(b []byte) []byte { binary.BigEndian.PutUint32(b[4:], 0); return b }, ErrMyDiscriminator},
		{"your discriminator 0 in Up", func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 0); return b }, ErrYourDiscriminator},
		{"your discriminator 0 in Init", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 0)
			b[1] = b[1]&0x3f | byte(StateInit)<<6
			return b
		}, ErrYourDiscriminator},
		{"your discriminator 0 in Down", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 0)
			b[1] = b[1]&0x3f | byte(StateDown)<<6
			return b
		}, nil},
		{"your discriminator 0 in AdminDown", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[8:], 0)
			b[1] = b[1]&0x3f | byte(StateAdminDown)<<6
			return b
		}, nil},
		{"A bit with simple password section", func(b []byte) []byte {
			b[1] |= 0x04
			b = append(b, 1, 7, 1, 'a', 'b', 'c', 'd')
			b[3] = byte(len(b))
			return b
		}, ErrAuthNotInUse},
		{"A bit with auth length beyond packet", func(b []byte) []byte {
			b[1] |= 0x04
			b = append(b, 1, 20, 1, 'a')
			b[3] = byte(len(b))
			return b
		}, ErrAuthLength},
		{"A bit with auth length 1", func(b []byte) []byte {
			b[1] |= 0x04
			b = append(b, 1, 1)
			b[3] = byte(len(b))
			return b
		}, ErrAuthLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseControlPacket(tt.mod(base()))
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Reason == nil {
					t.Fatalf("error %v is not a *ParseError with a reason", err)
				}
			}
		})
	}
}

// FuzzParseControlPacket checks that the decoder never panics, that
// whatever it accepts satisfies the receive checks, and that accepted packets
// survive a re-encode. Seeds live in testdata/fuzz/FuzzParseControlPacket and
// below, so `go test` runs them as regular cases.
func FuzzParseControlPacket(f *testing.F) {
	p := validPacket()
	f.Add(p.Marshal())
	p.State, p.YourDiscriminator = StateDown, 0
	f.Add(p.Marshal())
	f.Add([]byte{})
	f.Add(make([]byte, 24))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseControlPacket(b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is not a *ParseError: %v", err)
			}
			return
		}
		if len(b) < ControlPacketLen || int(b[3]) > len(b) || b[3] < ControlPacketLen {
			t.Fatalf("accepted a packet with bad length: % x", b)
		}
		if p.Version != 1 || p.DetectMult == 0 || p.Multipoint || p.MyDiscriminator == 0 || p.AuthPresent {
			t.Fatalf("accepted an invalid packet %+v", p)
		}
		if p.YourDiscriminator == 0 && p.State != StateDown && p.State != StateAdminDown {
			t.Fatalf("accepted zero Your Discriminator in %s", p.State)
		}
		again, err := ParseControlPacket(p.Marshal())
		if err != nil || again != p {
			t.Fatalf("re-encode: %+v, %v; want %+v", again, err, p)
		}
		// Every bit but the Length byte must survive (Length may count padding).
		enc, orig := p.Marshal(), bytes.Clone(b[:ControlPacketLen])
		enc[3], orig[3] = 0, 0
		if !bytes.Equal(enc, orig) {
			t.Fatalf("re-encode differs: % x vs % x", enc, orig)
		}
	})
}

func TestStrings(t *testing.T) {
	if got := DiagControlDetectionTimeExpired.String(); got != "Control Detection Time Expired" {
		t.Errorf("diag 1 = %q", got)
	}
	if got := Diagnostic(31).String(); got != "Diagnostic(31)" {
		t.Errorf("diag 31 = %q", got)
	}
	for s, want := range map[State]string{StateAdminDown: "AdminDown", StateDown: "Down", StateInit: "Init", StateUp: "Up", 7: "State(7)"} {
		if s.String() != want {
			t.Errorf("%d = %q, want %q", s, s.String(), want)
		}
	}
}
