package bfd

import (
	"fmt"
	"time"
)

// Event is an input to the session state machine.
type Event uint8

// State machine events (RFC 5880 section 6.2 and 6.8.6).
const (
	EventRecvAdminDown Event = iota // a packet arrived with State AdminDown
	EventRecvDown                   // a packet arrived with State Down
	EventRecvInit                   // a packet arrived with State Init
	EventRecvUp                     // a packet arrived with State Up
	EventDetectTimeout              // the Detection Time passed without a packet
	EventAdminDown                  // local administrative shutdown
	EventAdminUp                    // local administrative enable
	EventEchoTimeout                // echo packets stopped coming back (RFC 5880 section 6.8.5)
)

// String names the event.
func (e Event) String() string {
	switch e {
	case EventRecvAdminDown:
		return "RecvAdminDown"
	case EventRecvDown:
		return "RecvDown"
	case EventRecvInit:
		return "RecvInit"
	case EventRecvUp:
		return "RecvUp"
	case EventDetectTimeout:
		return "DetectTimeout"
	case EventAdminDown:
		return "AdminDown"
	case EventAdminUp:
		return "AdminUp"
	case EventEchoTimeout:
		return "EchoTimeout"
	}
	return fmt.Sprintf("Event(%d)", uint8(e))
}

// RecvEvent maps the State field of a received packet to its event.
func RecvEvent(remote State) Event {
	switch remote {
	case StateAdminDown:
		return EventRecvAdminDown
	case StateDown:
		return EventRecvDown
	case StateInit:
		return EventRecvInit
	default:
		return EventRecvUp
	}
}

// Transition is the RFC 5880 state machine (section 6.2, with the actions of
// sections 6.8.4, 6.8.6 and 6.8.16). It returns the next state and, when the
// state changes, the local diagnostic to set (DiagNone when a session comes
// Init or Up). When next == cur the diagnostic must be left as it was.
func Transition(cur State, ev Event) (next State, diag Diagnostic) {
	switch ev {
	case EventAdminDown:
		if cur == StateAdminDown {
			return cur, DiagNone
		}
		return StateAdminDown, DiagAdminDown
	case EventAdminUp:
		if cur == StateAdminDown {
			return StateDown, DiagNone
		}
		return cur, DiagNone
	}
	switch cur {
	case StateAdminDown:
		// 6.8.6: packets are discarded in AdminDown; 6.8.4: timers do not apply.
		return cur, DiagNone
	case StateDown:
		switch ev {
		case EventRecvDown:
			return StateInit, DiagNone
		case EventRecvInit:
			return StateUp, DiagNone
		}
	case StateInit:
		switch ev {
		case EventRecvAdminDown:
			return StateDown, DiagNeighborSignaledDown
		case EventRecvInit, EventRecvUp:
			return StateUp, DiagNone
		case EventDetectTimeout:
			return StateDown, DiagControlDetectionTimeExpired
		case EventEchoTimeout:
			return StateDown, DiagEchoFailed
		}
	case StateUp:
		switch ev {
		case EventRecvAdminDown, EventRecvDown:
			return StateDown, DiagNeighborSignaledDown
		case EventDetectTimeout:
			return StateDown, DiagControlDetectionTimeExpired
		case EventEchoTimeout:
			return StateDown, DiagEchoFailed
		}
	}
	return cur, DiagNone
}

// slowTxInterval is the floor on Desired Min TX while a session is not Up
// (RFC 5880 section 6.8.3), in microseconds.
const slowTxInterval = 1_000_000

// usec converts a wire interval in microseconds to a Duration.
func usec(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }

// TxInterval is the negotiated transmit interval of RFC 5880 section 6.8.7:
// the larger of our Desired Min TX and the remote's Required Min RX
// (both in microseconds). Zero means "do not transmit periodically"
// (remote Required Min RX of zero).
func TxInterval(localDesiredMinTx, remoteRequiredMinRx uint32) time.Duration {
	if remoteRequiredMinRx == 0 {
		return 0
	}
	return usec(max(localDesiredMinTx, remoteRequiredMinRx))
}

// Jitter applies the RFC 5880 section 6.8.7 jitter to a transmit interval:
// the interval is reduced by 0-25% (by 10-25% when localDetectMult is 1).
// r is a uniform random number in [0, 1).
func Jitter(interval time.Duration, localDetectMult uint8, r float64) time.Duration {
	lo, span := 0.0, 0.25
	if localDetectMult == 1 {
		lo, span = 0.10, 0.15
	}
	reduction := lo + span*r
	return time.Duration(float64(interval) * (1 - reduction))
}

// DetectionTime is the asynchronous-mode Detection Time of RFC 5880
// section 6.8.4: the remote's Detect Mult times the larger of our Required
// Min RX and the remote's last Desired Min TX (both in microseconds).
func DetectionTime(remoteDetectMult uint8, localRequiredMinRx, remoteDesiredMinTx uint32) time.Duration {
	return time.Duration(remoteDetectMult) * usec(max(localRequiredMinRx, remoteDesiredMinTx))
}
