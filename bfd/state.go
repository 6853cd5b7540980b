package bfd

import "fmt"

// State is a BFD session state (RFC 5880 section 4.1).
type State uint8

// Session states, with their on-the-wire values.
const (
	StateAdminDown State = 0
	StateDown      State = 1
	StateInit      State = 2
	StateUp        State = 3
)

// String returns "AdminDown", "Down", "Init" or "Up".
func (s State) String() string {
	switch s {
	case StateAdminDown:
		return "AdminDown"
	case StateDown:
		return "Down"
	case StateInit:
		return "Init"
	case StateUp:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diagnostic is the RFC 5880 diagnostic code carried in every control packet.
type Diagnostic uint8

// Diagnostic codes (RFC 5880 section 4.1).
const (
	DiagNone                        Diagnostic = 0
	DiagControlDetectionTimeExpired Diagnostic = 1
	DiagEchoFailed                  Diagnostic = 2
	DiagNeighborSignaledDown        Diagnostic = 3
	DiagForwardingPlaneReset        Diagnostic = 4
	DiagPathDown                    Diagnostic = 5
	DiagConcatenatedPathDown        Diagnostic = 6
	DiagAdminDown                   Diagnostic = 7
	DiagReverseConcatenatedPathDown Diagnostic = 8
)

var diagNames = [...]string{
	DiagNone:                        "No Diagnostic",
	DiagControlDetectionTimeExpired: "Control Detection Time Expired",
	DiagEchoFailed:                  "Echo Function Failed",
	DiagNeighborSignaledDown:        "Neighbor Signaled Session Down",
	DiagForwardingPlaneReset:        "Forwarding Plane Reset",
	DiagPathDown:                    "Path Down",
	DiagConcatenatedPathDown:        "Concatenated Path Down",
	DiagAdminDown:                   "Administratively Down",
	DiagReverseConcatenatedPathDown: "Reverse Concatenated Path Down",
}

// String returns the RFC 5880 name of the diagnostic, e.g.
// "Control Detection Time Expired".
func (d Diagnostic) String() string {
	if int(d) < len(diagNames) {
		return diagNames[d]
	}
	return fmt.Sprintf("Diagnostic(%d)", uint8(d))
}
