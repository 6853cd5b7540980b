package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/ecmplb/ecmplb/scenarios/scenariofile"
	"github.com/ecmplb/ecmplb/scenarios/stream"
)

// The report's table has a row per fault (an empty window before the first
// fault left out), the whole stream last, and a column per node.
func TestStreamTable(t *testing.T) {
	at := time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC)
	st := scenariofile.Step{Kind: scenariofile.StepStream, Line: 38, Service: scenariofile.Service{Namespace: "default", Name: "web"},
		Stream: scenariofile.Stream{Proto: "tcp", Port: 443, Connections: 3, Interval: 10 * time.Millisecond, Timeout: time.Second}}
	res := stream.Result{
		Windows: []stream.Window{
			{Label: "start", Start: at, Open: 3, Nodes: map[string]int{}},
			{Label: "line 39: fault: restart-speaker node1", Start: at, Open: 3, Lost: 1, Reopened: 1, Sent: 300, Unanswered: 1,
				Nodes: map[string]int{"node1": 2, "node2": 2}, Errors: []string{"connection reset by peer"}},
		},
		Connections: 4,
		Nodes:       map[string]int{"node1": 2, "node2": 2},
	}
	tab := streamTable(st, res, []string{"node1", "node2", "node3"})
	if len(tab.Rows) != 2 {
		t.Fatalf("rows %v, want the fault and the whole stream", tab.Rows)
	}
	want := []string{"line 39: fault: restart-speaker node1 (13:00:00.000)", "3", "1", "1", "300", "1", "2", "2", "0", "connection reset by peer"}
	if got := tab.Rows[0]; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("fault row %q, want %q", got, want)
	}
	if got := tab.Rows[1]; got[0] != "whole stream (4 connections opened)" || got[2] != "1" || got[4] != "300" {
		t.Errorf("total row %q", got)
	}
	if len(tab.Header) != len(want) || tab.Header[6] != "answered by node1" {
		t.Errorf("header %q", tab.Header)
	}
}
