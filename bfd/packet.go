package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Packet sizes (RFC 5880 section 4.1).
const (
	// ControlPacketLen is the length of a control packet without authentication.
	ControlPacketLen = 24
	// Version is the protocol version this package speaks.
	Version = 1
	// maxControlPacketLen bounds what the receive loop reads; the Length field is one byte.
	maxControlPacketLen = 255
)

// ControlPacket is a decoded BFD control packet (RFC 5880 section 4.1).
// Intervals are in microseconds, as on the wire.
type ControlPacket struct {
	Version                   uint8
	Diag                      Diagnostic
	State                     State
	Poll                      bool
	Final                     bool
	ControlPlaneIndependent   bool
	AuthPresent               bool
	Demand                    bool
	Multipoint                bool
	DetectMult                uint8
	MyDiscriminator           uint32
	YourDiscriminator         uint32
	DesiredMinTxInterval      uint32
	RequiredMinRxInterval     uint32
	RequiredMinEchoRxInterval uint32
}

// Errors returned by ParseControlPacket, one per receive check of RFC 5880
// section 6.8.6 that can be decided from the packet alone. Each is also a
// short, stable reason used as a metric label.
var (
	ErrShort             = errors.New("short")                   // fewer bytes than the minimum packet
	ErrVersion           = errors.New("version")                 // Version field is not 1
	ErrLength            = errors.New("length")                  // Length field below the minimum or beyond the payload
	ErrDetectMult        = errors.New("detect-mult-zero")        // Detect Mult is zero
	ErrMultipoint        = errors.New("multipoint")              // M bit set
	ErrMyDiscriminator   = errors.New("my-discriminator-zero")   // My Discriminator is zero
	ErrYourDiscriminator = errors.New("your-discriminator-zero") // Your Discriminator is zero while State is Init or Up
	ErrAuthNotInUse      = errors.New("auth-not-in-use")         // A bit set but this implementation uses no authentication
	ErrAuthLength        = errors.New("auth-length")             // A bit set and the authentication section is malformed
)

// ParseError wraps one of the Err* reasons with the offending value.
type ParseError struct {
	Reason error
	Detail string
}

// Error implements error.
func (e *ParseError) Error() string {
	return "bfd control packet: " + e.Reason.Error() + ": " + e.Detail
}

// Unwrap returns the reason, so errors.Is(err, ErrVersion) works.
func (e *ParseError) Unwrap() error { return e.Reason }

func parseErr(reason error, format string, args ...any) error {
	return &ParseError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// ParseControlPacket decodes b, the UDP payload of a received control packet,
// and applies the packet-level receive checks of RFC 5880 section 6.8.6:
// version, length (against both the minimum and the payload), Detect Mult,
// Multipoint, My Discriminator, Your Discriminator against State, and the
// A bit (this implementation configures no authentication, so any packet with
// the A bit set is discarded). Session-level checks (selecting the session by
// Your Discriminator) are done by the caller. Bytes beyond the Length field
// are ignored, as the RFC allows padding by the encapsulation.
func ParseControlPacket(b []byte) (ControlPacket, error) {
	var p ControlPacket
	if len(b) < ControlPacketLen {
		return p, parseErr(ErrShort, "%d bytes", len(b))
	}
	p.Version = b[0] >> 5
	p.Diag = Diagnostic(b[0] & 0x1f)
	p.State = State(b[1] >> 6)
	p.Poll = b[1]&0x20 != 0
	p.Final = b[1]&0x10 != 0
	p.ControlPlaneIndependent = b[1]&0x08 != 0
	p.AuthPresent = b[1]&0x04 != 0
	p.Demand = b[1]&0x02 != 0
	p.Multipoint = b[1]&0x01 != 0
	p.DetectMult = b[2]
	length := int(b[3])
	p.MyDiscriminator = binary.BigEndian.Uint32(b[4:])
	p.YourDiscriminator = binary.BigEndian.Uint32(b[8:])
	p.DesiredMinTxInterval = binary.BigEndian.Uint32(b[12:])
	p.RequiredMinRxInterval = binary.BigEndian.Uint32(b[16:])
	p.RequiredMinEchoRxInterval = binary.BigEndian.Uint32(b[20:])

	if p.Version != Version {
		return p, parseErr(ErrVersion, "version %d", p.Version)
	}
	minLen := ControlPacketLen
	if p.AuthPresent {
		minLen = ControlPacketLen + 2
	}
	if length < minLen {
		return p, parseErr(ErrLength, "length field %d below minimum %d", length, minLen)
	}
	if length > len(b) {
		return p, parseErr(ErrLength, "length field %d exceeds payload %d", length, len(b))
	}
	if p.DetectMult == 0 {
		return p, parseErr(ErrDetectMult, "detect mult 0")
	}
	if p.Multipoint {
		return p, parseErr(ErrMultipoint, "M bit set")
	}
	if p.MyDiscriminator == 0 {
		return p, parseErr(ErrMyDiscriminator, "my discriminator 0")
	}
	if p.YourDiscriminator == 0 && p.State != StateDown && p.State != StateAdminDown {
		return p, parseErr(ErrYourDiscriminator, "your discriminator 0 in state %s", p.State)
	}
	if p.AuthPresent {
		// The section must still be well formed before we can say why we drop it.
		if authLen := int(b[ControlPacketLen+1]); authLen < 2 || ControlPacketLen+authLen > length {
			return p, parseErr(ErrAuthLength, "auth length %d in packet length %d", authLen, length)
		}
		return p, parseErr(ErrAuthNotInUse, "auth type %d", b[ControlPacketLen])
	}
	return p, nil
}

// AppendTo appends the 24-byte wire form of p to b. Version is always written
// as 1 and the A bit as clear (no authentication section is written).
func (p *ControlPacket) AppendTo(b []byte) []byte {
	var flags byte
	flags |= byte(p.State&3) << 6
	if p.Poll {
		flags |= 0x20
	}
	if p.Final {
		flags |= 0x10
	}
	if p.ControlPlaneIndependent {
		flags |= 0x08
	}
	if p.Demand {
		flags |= 0x02
	}
	if p.Multipoint {
		flags |= 0x01
	}
	b = append(b, Version<<5|byte(p.Diag&0x1f), flags, p.DetectMult, ControlPacketLen)
	b = binary.BigEndian.AppendUint32(b, p.MyDiscriminator)
	b = binary.BigEndian.AppendUint32(b, p.YourDiscriminator)
	b = binary.BigEndian.AppendUint32(b, p.DesiredMinTxInterval)
	b = binary.BigEndian.AppendUint32(b, p.RequiredMinRxInterval)
	b = binary.BigEndian.AppendUint32(b, p.RequiredMinEchoRxInterval)
	return b
}

// Marshal returns the wire form of p.
func (p *ControlPacket) Marshal() []byte { return p.AppendTo(make([]byte, 0, ControlPacketLen)) }
