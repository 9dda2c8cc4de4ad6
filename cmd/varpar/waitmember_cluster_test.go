//go:build linux

package main

import (
	"strings"
	"testing"

	"github.com/varpar/varpar/deploy/local"
)

// TestWaitMemberCluster runs varpar wait-member against real peers: it
// fails for a member not started yet, naming it in each view, then waits
// through the member's join until the plan has settled.
func TestWaitMemberCluster(t *testing.T) {
	c := startTestCluster(t, testFamily(t))
	ps := startPeers(t, c, local.Spec{Name: "a"}, local.Spec{Name: "b"})
	waitReady(t, c, ps)
	args := func(member, timeout string, peers ...*local.Peer) []string {
		a := []string{"wait-member", "--member", member, "--timeout", timeout, "--interval", "200ms"}
		for _, p := range peers {
			a = append(a, "--peer", "http://"+p.HTTPAddr)
		}
		return a
	}

	out, errOut, code := run(t, args("b", "30s", ps...)...)
	if code != 0 || !strings.Contains(out, "b: ready, a live member in all 2 peers' views") {
		t.Fatalf("wait-member b: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = run(t, args("c", "2s", ps...)...)
	if code != 1 || !strings.Contains(errOut, "(self a): c is not a live member") || !strings.Contains(errOut, "(self b): c is not a live member") ||
		!strings.Contains(errOut, `no --peer answers /v1/cluster with self "c"`) {
		t.Fatalf("wait-member c before c started: exit %d, want 1 naming c missing from a's and b's views\n%s%s", code, out, errOut)
	}

	// c joins: wait-member, started at once, sees it come.
	cp := startPeers(t, c, local.Spec{Name: "c"})[0]
	all := append(ps, cp)
	out, errOut, code = run(t, args("c", "60s", all...)...)
	if code != 0 || !strings.Contains(out, "c: ready, a live member in all 3 peers' views, plan settled") {
		t.Fatalf("wait-member c: exit %d\n%s%s", code, out, errOut)
	}
	cv, err := ps[0].API.Cluster(t.Context())
	if err != nil || !cv.HasMember("c") || local.PlanSettled(cv) != "" {
		t.Fatalf("after wait-member c: a's view %+v (%v)", cv, err)
	}
	t.Logf("wait-member c:\n%s", out)

	// b leaves: waiting for it again fails, naming b's own peer.
	if err := ps[1].Stop(5e9); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = run(t, args("b", "2s", all...)...)
	if code != 1 || !strings.Contains(errOut, "(self a): b is not a live member") {
		t.Fatalf("wait-member b after b stopped: exit %d\n%s%s", code, out, errOut)
	}
}
