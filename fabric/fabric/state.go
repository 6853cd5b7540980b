package fabric

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/ecmplb/ecmplb/fabric/topology"
)

// DefaultStateRoot is where every fabric instance keeps its state directory.
const DefaultStateRoot = "/run/ecmplb/fabric"

// Proc is a process the fabric started.
type Proc struct {
	PID    int    `json:"pid"`
	NetNS  string `json:"netns"`
	Socket string `json:"socket"`
	Config string `json:"config"`
	Log    string `json:"log"`
}

// Alive reports whether the process still exists.
func (p Proc) Alive() bool { return p.PID > 0 && syscall.Kill(p.PID, 0) == nil }

// State is what an instance records on disk (state.json in its directory), so any
// process (the CLI, a later `fabric down`) can find and clean up what Up created.
type State struct {
	Instance string            `json:"instance"`
	Created  time.Time         `json:"created"`
	Binary   string            `json:"binary"`
	Topology topology.Topology `json:"topology"`
	// Switch is the namespace holding the bridge of the L2 segment (empty
	// with an ExternalSegment).
	Switch string `json:"switch"`
	// ExternalSegment is the host bridge used as the segment (Options).
	ExternalSegment string `json:"externalSegment,omitempty"`
	// ExternalNodes: the nodes are not the fabric's (Options).
	ExternalNodes bool `json:"externalNodes,omitempty"`
	// ExternalL2 is the host bridge used as the L2 segment (Options).
	ExternalL2 string `json:"externalL2,omitempty"`
	// HostLinks are the links the instance created in the host's network
	// namespace (the ToRs' ends on an ExternalSegment), deleted by Down.
	HostLinks []string `json:"hostLinks,omitempty"`
	// NetNS maps every ToR, node and client name to its namespace name.
	NetNS map[string]string `json:"netns"`
	// Routers are the router processes by ToR name.
	Routers map[string]Proc `json:"routers"`
	// Announcers are test announcer processes by node name.
	Announcers map[string]Proc `json:"announcers,omitempty"`
	// Faults is the fault log (see Fabric.FaultLog).
	Faults []FaultEvent `json:"faults,omitempty"`
}

// Namespaces lists every namespace of the instance, the switch last.
func (s State) Namespaces() []string {
	var out []string
	for _, n := range s.NetNS {
		out = append(out, n)
	}
	sort.Strings(out)
	if s.Switch != "" {
		out = append(out, s.Switch)
	}
	return out
}

func stateFile(dir string) string { return filepath.Join(dir, "state.json") }

func readState(dir string) (State, error) {
	b, err := os.ReadFile(stateFile(dir))
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("%s: %w", stateFile(dir), err)
	}
	return s, nil
}

func writeState(dir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := stateFile(dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, stateFile(dir))
}

// lockDir takes an exclusive lock on the instance directory for read-modify-write of
// its state; the returned func releases it.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// Instance summarises one instance found under a state root.
type Instance struct {
	Name    string    `json:"name"`
	Dir     string    `json:"dir"`
	Created time.Time `json:"created"`
	// Topology is the topology's name.
	Topology string `json:"topology"`
	// Routers and RoutersAlive count the router processes recorded and running.
	Routers      int `json:"routers"`
	RoutersAlive int `json:"routersAlive"`
	// Stale is true when no router runs any more (the creating process was killed,
	// or the routers died): `fabric down` cleans it up.
	Stale bool `json:"stale"`
	// Err is set when the state file could not be read.
	Err string `json:"error,omitempty"`
}

// List returns the instances under root (DefaultStateRoot when empty).
func List(root string) ([]Instance, error) {
	if root == "" {
		root = DefaultStateRoot
	}
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Instance
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		in := Instance{Name: e.Name(), Dir: dir}
		s, err := readState(dir)
		if err != nil {
			in.Err = err.Error()
			in.Stale = true
			out = append(out, in)
			continue
		}
		in.Created, in.Topology, in.Routers = s.Created, s.Topology.Name, len(s.Routers)
		for _, p := range s.Routers {
			if p.Alive() {
				in.RoutersAlive++
			}
		}
		in.Stale = in.RoutersAlive == 0
		out = append(out, in)
	}
	return out, nil
}
