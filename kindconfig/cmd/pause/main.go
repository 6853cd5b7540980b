// Command pause is the sandbox ("pause") container of the ecmplb kind node
// image: it holds a pod's namespaces open, reaps the zombies it inherits as
// the pod's PID 1 (when the pod shares its PID namespace), and exits on
// SIGINT or SIGTERM. It is built statically and packaged as
// registry.k8s.io/pause:3.10 and :3.10.1 by hack/build-node-image.sh, since no
// registry can be reached to pull the upstream image.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("ecmplb pause")
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "pause: warning: not PID 1")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "pause: shutting down on %v\n", s)
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
