package netns

import "fmt"

// SegmentBridge is the bridge in a Segment's hub namespace.
const SegmentBridge = "br0"

// Segment is hosts on one Ethernet segment: a hub namespace holding a
// bridge, and each host namespace joined to a port of it by a veth whose
// host end is eth0. Setting a port down (SetLinkUp(Hub, Ports[i], false))
// cuts that host off the segment, as a pulled cable does.
type Segment struct {
	Hub   string   // the namespace of the bridge
	Hosts []string // the hosts' namespaces, in the order of the roles given
	Ports []string // Ports[i]: Hosts[i]'s veth end in Hub, enslaved to the bridge
}

// Segment creates a hub namespace (role hub) and one namespace per host role
// (each within 4 characters, see NS), links them as a Segment, and gives
// host i's eth0 the addresses addrs[i] (CIDR notation; addrs may be shorter
// than hosts). Close removes it all with the lab.
func (l *Lab) Segment(hub string, hosts []string, addrs [][]string) (*Segment, error) {
	h, err := l.NS(hub)
	if err != nil {
		return nil, err
	}
	if err := AddBridge(h, SegmentBridge); err != nil {
		return nil, err
	}
	s := &Segment{Hub: h}
	for i, role := range hosts {
		n, err := l.NS(role)
		if err != nil {
			return nil, err
		}
		port := fmt.Sprintf("p%d", i)
		if err := AddVeth(h, port, n, "eth0"); err != nil {
			return nil, err
		}
		if err := AttachToBridge(h, port, SegmentBridge); err != nil {
			return nil, err
		}
		s.Hosts, s.Ports = append(s.Hosts, n), append(s.Ports, port)
		if i >= len(addrs) {
			continue
		}
		ps, err := parsePrefixes(addrs[i])
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", role, err)
		}
		for _, p := range ps {
			if err := AddAddress(n, "eth0", p); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}
