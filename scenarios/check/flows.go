package check

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// FlowMatcher matches flow counts by answering node (as
// backend.Backend.Flows returns them) spread over exactly some nodes.
type FlowMatcher struct {
	nodes   []string
	lost    int
	failure string
}

// SpreadOver matches flow counts where every named node answered at least
// one flow, no other node answered any, and no flow went unanswered.
func SpreadOver(nodes ...string) *FlowMatcher { return &FlowMatcher{nodes: nodes} }

// AllowingLost lets up to n flows go unanswered (flows in flight while a
// node fails).
func (m *FlowMatcher) AllowingLost(n int) *FlowMatcher { m.lost = n; return m }

// Match implements types.GomegaMatcher.
func (m *FlowMatcher) Match(actual any) (bool, error) {
	counts, ok := actual.(map[string]int)
	if !ok {
		return false, fmt.Errorf("expected flow counts (map[string]int), got %T", actual)
	}
	var problems []string
	for _, n := range m.nodes {
		if counts[n] == 0 {
			problems = append(problems, "no flow reached "+n)
		}
	}
	var others []string
	for n, c := range counts {
		if n != "" && c > 0 && !slices.Contains(m.nodes, n) {
			others = append(others, fmt.Sprintf("%d flows reached %s, which should not announce the route", c, n))
		}
	}
	sort.Strings(others)
	problems = append(problems, others...)
	if counts[""] > m.lost {
		problems = append(problems, fmt.Sprintf("%d flows got no answer (allowed %d)", counts[""], m.lost))
	}
	if len(problems) > 0 {
		m.failure = fmt.Sprintf("flows %s, want them spread over %s: %s", render(counts), strings.Join(m.nodes, ", "), strings.Join(problems, "; "))
		return false, nil
	}
	return true, nil
}

func render(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		name := k
		if name == "" {
			name = "unanswered"
		}
		parts[i] = fmt.Sprintf("%s=%d", name, counts[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// FailureMessage implements types.GomegaMatcher.
func (m *FlowMatcher) FailureMessage(any) string { return m.failure }

// NegatedFailureMessage implements types.GomegaMatcher.
func (m *FlowMatcher) NegatedFailureMessage(actual any) string {
	return fmt.Sprintf("flows %v spread over %s, want otherwise", actual, strings.Join(m.nodes, ", "))
}
