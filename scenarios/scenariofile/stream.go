package scenariofile

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// stream reads a stream step: which Service, how many connections, how
// often each sends.
func (p *parser) stream(n *yaml.Node, field string) (Service, Stream) {
	f := p.fields(n, field, "service", "family", "proto", "port", "connections", "interval", "timeout", "via")
	st := Stream{Proto: "tcp", Port: 443, Connections: 10, Interval: 10 * time.Millisecond, Timeout: time.Second}
	var svc Service
	if v := f["service"]; v != nil {
		svc = p.service(v, field+".service")
	} else {
		p.errf(n, field+".service", "missing: the Service the stream goes to")
	}
	if v := f["family"]; v != nil {
		svc.Family = p.family(v, field+".family")
	}
	if p.inRepeat {
		p.errf(n, field, "a stream runs across the scenario's steps: start and stop it outside the repeat")
	}
	if v := f["proto"]; v != nil {
		st.Proto = p.str(v, field+".proto")
		if st.Proto != "tcp" {
			p.errf(v, field+".proto", "%q: a stream holds TCP connections (proto: tcp)", st.Proto)
		}
	}
	if v := f["port"]; v != nil {
		st.Port = uint16(p.integer(v, field+".port", 1, 65535))
	}
	if v := f["connections"]; v != nil {
		st.Connections = p.integer(v, field+".connections", 1, 200)
	}
	if v := f["interval"]; v != nil {
		st.Interval = p.duration(v, field+".interval")
		if st.Interval < time.Millisecond || st.Interval > 10*time.Second {
			p.errf(v, field+".interval", "%v: between 1ms and 10s", st.Interval)
		}
	}
	if v := f["timeout"]; v != nil {
		st.Timeout = p.duration(v, field+".timeout")
		if st.Timeout < 10*time.Millisecond || st.Timeout > time.Minute {
			p.errf(v, field+".timeout", "%v: between 10ms and 1m", st.Timeout)
		}
	}
	if v := f["via"]; v != nil {
		st.Via = p.via(v, field+".via")
		p.l2Family(v, field+".family", svc)
	}
	return svc, st
}

// stopStream reads a stop-stream step: its Service and the bounds on what
// the stream lost.
func (p *parser) stopStream(n *yaml.Node, field string) (Service, StopStream) {
	f := p.fields(n, field, "service", "family", "lost", "lostAtLeast", "spread")
	ss := StopStream{}
	var svc Service
	if v := f["service"]; v != nil {
		svc = p.service(v, field+".service")
	} else {
		p.errf(n, field+".service", "missing: the Service whose stream stops")
	}
	if v := f["family"]; v != nil {
		svc.Family = p.family(v, field+".family")
	}
	if p.inRepeat {
		p.errf(n, field, "a stream runs across the scenario's steps: start and stop it outside the repeat")
	}
	ss.Lost = StreamLoss{Connections: -1, Packets: -1}
	ss.LostAtLeast = StreamLoss{Connections: -1, Packets: -1}
	if v := f["lost"]; v != nil {
		ss.Lost = p.streamLoss(v, field+".lost", 0)
	}
	if v := f["lostAtLeast"]; v != nil {
		ss.LostAtLeast = p.streamLoss(v, field+".lostAtLeast", 1)
		if ss.LostAtLeast == (StreamLoss{-1, -1}) {
			p.errf(v, field+".lostAtLeast", "give connections or packets (at least 1)")
		}
	}
	// An upper bound left out is 0, unless the step expects a loss (gives
	// a lower bound): then none.
	expectsLoss := f["lostAtLeast"] != nil
	bound := func(what string, high *int, low *int) {
		if *high < 0 && !expectsLoss {
			*high = 0
		}
		if *low < 0 {
			*low = 0
		}
		if *high >= 0 && *low > *high {
			p.errf(f["lostAtLeast"], field+".lostAtLeast."+what, "%d is more than lost.%s %d", *low, what, *high)
		}
	}
	bound("connections", &ss.Lost.Connections, &ss.LostAtLeast.Connections)
	bound("packets", &ss.Lost.Packets, &ss.LostAtLeast.Packets)
	if v := f["spread"]; v != nil {
		ss.Spread = p.nodes(v, field+".spread")
	}
	return svc, ss
}

// streamLoss reads {connections, packets}, each at least lo; -1 for one
// left out.
func (p *parser) streamLoss(n *yaml.Node, field string, lo int) StreamLoss {
	f := p.fields(n, field, "connections", "packets")
	l := StreamLoss{-1, -1}
	if v := f["connections"]; v != nil {
		l.Connections = p.integer(v, field+".connections", lo, 1000000)
	}
	if v := f["packets"]; v != nil {
		l.Packets = p.integer(v, field+".packets", lo, 1000000)
	}
	return l
}

// streams checks that every stream is started once, stopped later, and not
// sent flows while it runs (its responders hold the Service's port).
func (p *parser) streams(steps []Step, nodes []*yaml.Node, field string) {
	running := map[Service]int{} // Service → index of its stream step
	for i, st := range steps {
		where := fmt.Sprintf("%s[%d].%s", field, i, st.Kind)
		switch st.Kind {
		case StepStream:
			if j, ok := running[st.Service]; ok {
				p.errf(nodes[i], where+".service", "%s already has a stream (started at %s[%d]): stop it first", st.Service, field, j)
			}
			running[st.Service] = i
		case StepStopStream:
			if _, ok := running[st.Service]; !ok {
				p.errf(nodes[i], where+".service", "%s has no stream running: start one with a stream step before", st.Service)
			}
			delete(running, st.Service)
		case StepFlows:
			if j, ok := running[st.Service]; ok {
				p.errf(nodes[i], where+".service", "%s has a stream running (started at %s[%d]): stop it before sending flows", st.Service, field, j)
			}
		}
	}
	for svc, i := range running {
		p.errf(nodes[i], fmt.Sprintf("%s[%d].stream", field, i), "the stream to %s is never stopped: end the scenario with a stop-stream step, which checks what it lost", svc)
	}
}

func (s StopStream) describe() string {
	var parts []string
	if s.Lost.Connections >= 0 {
		parts = append(parts, fmt.Sprintf("at most %d connections", s.Lost.Connections))
	}
	if s.Lost.Packets >= 0 {
		parts = append(parts, fmt.Sprintf("at most %d packets", s.Lost.Packets))
	}
	if s.LostAtLeast.Connections > 0 {
		parts = append(parts, fmt.Sprintf("at least %d connections", s.LostAtLeast.Connections))
	}
	if s.LostAtLeast.Packets > 0 {
		parts = append(parts, fmt.Sprintf("at least %d packets", s.LostAtLeast.Packets))
	}
	out := "lost " + strings.Join(parts, ", ")
	if len(s.Spread) > 0 {
		out += "; connections answered by " + strings.Join(s.Spread, ", ")
	}
	return out
}
