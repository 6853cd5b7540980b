package proc

import (
	"fmt"
	"os"
	"strings"
)

// ReadComm reads /proc/PID/comm: the process name (at most 15 bytes of the
// executable's base name).
func ReadComm(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b)), err
}

// InNetNSOf lists the processes named comm (every process when comm is
// empty) whose network namespace is that of process pid, such as a
// container's init process, the calling process excluded.
func InNetNSOf(pid int, comm string) ([]int, error) {
	want, err := netNSInode(pid)
	if err != nil {
		return nil, fmt.Errorf("network namespace of pid %d: %w", pid, err)
	}
	return inNSInode(want, comm)
}
