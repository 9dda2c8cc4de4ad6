package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenIn listens on addr inside the namespace ns (the same thread trick
// as netnsDialer).
func listenIn(t *testing.T, ns, addr string) net.Listener {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	l, lerr := net.Listen("tcp", addr)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err) // the thread is in the wrong namespace: stop here
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	return l
}

// The dialer reaches a listener inside the namespace and not one outside.
func TestNetnsDialer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip")
	}
	rnd := make([]byte, 3)
	rand.Read(rnd)
	ns := nsPrefix + "t" + hex.EncodeToString(rnd)
	if _, err := cmdOut("ip", "netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	defer cmdOut("ip", "netns", "del", ns)
	if _, err := cmdOut("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	inside := listenIn(t, ns, "127.0.0.1:0")
	defer inside.Close()
	go func() {
		for {
			c, err := inside.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("in"))
			c.Close()
		}
	}()
	dial := netnsDialer(ns)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, "tcp", inside.Addr().String())
	if err != nil {
		t.Fatalf("dial inside: %v", err)
	}
	b := make([]byte, 2)
	if _, err := c.Read(b); err != nil || string(b) != "in" {
		t.Fatalf("read %q, %v", b, err)
	}
	c.Close()
	outside, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	if c, err := dial(ctx, "tcp", outside.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the dialer reached a listener of the root namespace")
	}
	// The caller's thread is back in the root namespace.
	if c, err := net.Dial("tcp", outside.Addr().String()); err != nil {
		t.Fatalf("root namespace dial after: %v", err)
	} else {
		c.Close()
	}
}
