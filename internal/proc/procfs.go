package proc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ecmplb/ecmplb/internal/netns"
)

// Stat is what /proc/PID/stat tells of a process.
type Stat struct {
	// State is the state letter: "R" running, "S" sleeping, "T" stopped, "Z"
	// zombie, ...
	State string
	// CPU is the user plus system time used so far.
	CPU time.Duration
	// StartTime is when the process started, in clock ticks since boot
	// (field 22); 0 when the line is too short to hold it. With the pid it
	// names one process even after the pid is reused.
	StartTime uint64
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return parseStat(b)
}

// ReadCmdline reads /proc/PID/cmdline: the arguments, NUL-separated.
func ReadCmdline(pid int) ([]byte, error) {
	return os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
}

// parseStat parses "pid (comm) state ppid ...": comm may hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("malformed stat %q", b)
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 13 {
		return Stat{}, fmt.Errorf("malformed stat %q", b)
	}
	utime, _ := strconv.ParseUint(fs[11], 10, 64)
	stime, _ := strconv.ParseUint(fs[12], 10, 64)
	st := Stat{State: fs[0], CPU: time.Duration(utime+stime) * time.Second / 100} // USER_HZ
	// fs[0] is field 3 (state), so field 22 (starttime) is fs[19].
	if len(fs) > 19 {
		start, err := strconv.ParseUint(fs[19], 10, 64)
		if err != nil {
			return Stat{}, fmt.Errorf("malformed stat start time %q", fs[19])
		}
		st.StartTime = start
	}
	return st, nil
}

// ReadStatus reads /proc/PID/status: field name ("VmHWM", "CapEff", "Uid") to
// value, surrounding space trimmed ("1234 kB", "0000000000002000", "0	0	0	0").
func ReadStatus(pid int) (map[string]string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}

// Usage is what the kernel reports of a process's memory and CPU.
type Usage struct {
	RSS, PeakRSS uint64 // bytes (VmRSS, VmHWM)
	// RSS by kind, bytes: anonymous memory (the heap, stacks) and pages of
	// mapped files (the binary's code and read-only data).
	RSSAnon, RSSFile uint64
	CPU              time.Duration
}

// ReadUsage reads /proc/PID/status and /proc/PID/stat. A process that has
// ended but not been reaped has no memory figures: they are 0.
func ReadUsage(pid int) (Usage, error) {
	var u Usage
	st, err := ReadStatus(pid)
	if err != nil {
		return u, err
	}
	u.RSS, u.PeakRSS = kB(st["VmRSS"]), kB(st["VmHWM"])
	u.RSSAnon, u.RSSFile = kB(st["RssAnon"]), kB(st["RssFile"])
	s, err := ReadStat(pid)
	u.CPU = s.CPU
	return u, err
}

// OpenFDs counts the open file descriptors of a process (/proc/PID/fd).
func OpenFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// kB converts a status value such as "1234 kB" to bytes.
func kB(v string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimSuffix(v, " kB"), 10, 64)
	return n * 1024
}

// WaitStopped waits until every listed process is stopped (state T) or gone: a
// stop signal takes effect asynchronously, so a freeze is in force only once
// this returns.
func WaitStopped(ctx context.Context, pids ...int) error {
	for _, pid := range pids {
		for {
			st, err := ReadStat(pid)
			if err != nil || st.State == "T" || st.State == "t" || st.State == "Z" || st.State == "X" {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("pid %d not stopped (state %s): %w", pid, st.State, ctx.Err())
			case <-time.After(time.Millisecond):
			}
		}
	}
	return nil
}

// PIDNSInode returns the inode of a process's pid namespace: pids of
// processes in different pid namespaces cannot be compared.
func PIDNSInode(pid int) (uint64, error) {
	return inode(filepath.Join("/proc", strconv.Itoa(pid), "ns", "pid"))
}

// netNSInode returns the inode of a process's network namespace; compare it with
// that of a namespace's bind mount.
func netNSInode(pid int) (uint64, error) {
	return inode(filepath.Join("/proc", strconv.Itoa(pid), "ns", "net"))
}

// InNetNS lists the processes whose network namespace is the named one, the
// calling process excluded.
func InNetNS(name string) ([]int, error) {
	want, err := inode(netns.Path(name))
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	return inNSInode(want, "")
}

// inNSInode lists the processes named comm (any when empty) whose network
// namespace has inode want, the calling process excluded.
func inNSInode(want uint64, comm string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if comm != "" {
			if c, err := ReadComm(pid); err != nil || c != comm {
				continue
			}
		}
		if ino, err := netNSInode(pid); err == nil && ino == want {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// SignalInNetNS sends sig to every process in the named namespace and returns
// their pids.
func SignalInNetNS(name string, sig syscall.Signal) ([]int, error) {
	pids, err := InNetNS(name)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, pid := range pids {
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("signal %v to pid %d: %w", sig, pid, err))
		}
	}
	return pids, errors.Join(errs...)
}

func inode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// SystemCPU is the machine's CPU time from the first line of /proc/stat,
// summed over all CPUs: Busy is everything but idle and iowait.
type SystemCPU struct {
	Busy, Total time.Duration
}

// ReadSystemCPU reads /proc/stat: how busy the whole machine was, to tell
// whether a measurement shared it with other work.
func ReadSystemCPU() (SystemCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return SystemCPU{}, err
	}
	return parseSystemCPU(b)
}

// parseSystemCPU parses "cpu  user nice system idle iowait irq softirq
// steal ..." (USER_HZ ticks).
func parseSystemCPU(b []byte) (SystemCPU, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fs := strings.Fields(string(line))
	if len(fs) < 6 || fs[0] != "cpu" {
		return SystemCPU{}, fmt.Errorf("malformed /proc/stat line %q", line)
	}
	var s SystemCPU
	for i, f := range fs[1:] {
		if i >= 8 { // guest time is already counted in user and nice
			break
		}
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return SystemCPU{}, fmt.Errorf("malformed /proc/stat field %q", f)
		}
		d := time.Duration(n) * time.Second / 100
		s.Total += d
		if i != 3 && i != 4 { // idle, iowait
			s.Busy += d
		}
	}
	return s, nil
}

// ReadEphemeralPorts reads the range of ports Linux hands out to outgoing
// connections and to listeners on port 0 (net.ipv4.ip_local_port_range).
func ReadEphemeralPorts() (lo, hi int, err error) {
	return readPortRange("/proc/sys/net/ipv4/ip_local_port_range")
}

// readPortRange reads "low high" from path.
func readPortRange(path string) (int, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	var lo, hi int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &lo, &hi); err != nil || lo > hi {
		return 0, 0, fmt.Errorf("%s: %q is not a port range", path, strings.TrimSpace(string(b)))
	}
	return lo, hi, nil
}
