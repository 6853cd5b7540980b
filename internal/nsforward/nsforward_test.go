package nsforward

import (
	"bufio"
	"net"
	"testing"

	"github.com/ecmplb/ecmplb/internal/netns"
	"github.com/ecmplb/ecmplb/internal/netns/netnstest"
)

func TestForwardsIntoNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root and network namespaces")
	}
	name := netnstest.NS(t, netnstest.Lab(t), "fwd")

	// A line-echo server on the host's loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte("echo " + line))
			}()
		}
	}()

	f, err := Start(name, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Dial from inside the namespace, where nothing else listens.
	var reply string
	err = netns.Do(name, func() error {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello\n")); err != nil {
			return err
		}
		reply, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if reply != "echo hello\n" {
		t.Fatalf("reply through the forwarder = %q", reply)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Once closed, nothing listens inside the namespace any more.
	err = netns.Do(name, func() error {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Fatal("dial inside the namespace succeeded after Close")
	}
}
