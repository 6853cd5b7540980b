package bfdrun

import "github.com/ecmplb/ecmplb/bfd"

// PathFailure reports whether a session transition means the forwarding path
// to the peer failed, so that the BGP session over it must be reset at once.
//
// RFC 5882 §3.2: a session that goes Down because the remote system signalled
// AdminDown must not be taken as a path failure (the operator switched BFD
// off; the path may be fine). Neither is a local AdminDown. What is a failure:
// an Up session whose detection time expired or whose echo function failed
// here, or whose remote signalled Down with a diagnostic that names a path
// failure (it detected one on its side). A remote that signals Down with no
// failure diagnostic (a restarted session, RFC 5880 §6.8.6) says nothing
// about the path: BGP's own hold timer stays in charge of it.
func PathFailure(old, new bfd.State, localDiag bfd.Diagnostic, remoteState bfd.State, remoteDiag bfd.Diagnostic) bool {
	if old != bfd.StateUp || new != bfd.StateDown {
		return false
	}
	switch localDiag {
	case bfd.DiagControlDetectionTimeExpired, bfd.DiagEchoFailed:
		return true
	case bfd.DiagNeighborSignaledDown:
		if remoteState != bfd.StateDown {
			// AdminDown: an administrative shutdown. Init or Up: the remote
			// has already heard us again, so the path works both ways.
			return false
		}
		return failureDiag(remoteDiag)
	}
	return false
}

// failureDiag reports whether a diagnostic names a failure of the path (as
// opposed to none, an administrative action, or an echo of our own Down).
func failureDiag(d bfd.Diagnostic) bool {
	switch d {
	case bfd.DiagControlDetectionTimeExpired, bfd.DiagEchoFailed, bfd.DiagForwardingPlaneReset,
		bfd.DiagPathDown, bfd.DiagConcatenatedPathDown, bfd.DiagReverseConcatenatedPathDown:
		return true
	}
	return false
}
