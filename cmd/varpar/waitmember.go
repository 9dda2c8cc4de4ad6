package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/deploy/local"
	"github.com/varpar/varpar/peer/api"
)

// waitMember is varpar wait-member: a rolling upgrade runs it after each
// host restarts, and goes on to the next host only when it exits 0.
type waitMember struct {
	peers    []*api.Client
	self     *api.Client // the member's own peer; nil: the --peer whose view says self NAME
	member   string
	version  string        // "": any
	rounds   int           // consecutive polls that must find nothing missing
	interval time.Duration // between polls
	probe    time.Duration // per request
	out      io.Writer
	now      func() time.Time
}

// missing polls every peer once and lists what is still missing for the
// member to count as back: its own peer ready, listed live (at the version
// wanted) in every peer's view, and the plan settled and every variant
// served in every view. Empty means nothing is missing.
func (w *waitMember) missing(ctx context.Context) []string {
	var out []string
	self := w.self
	for _, c := range w.peers {
		cv, err := w.cluster(ctx, c)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: /v1/cluster: %v", c.URL(), err))
			continue
		}
		if self == nil && cv.Self == w.member {
			self = c
		}
		out = append(out, viewMissing(c.URL(), cv, w.member, w.version)...)
	}
	switch {
	case self == nil:
		out = append([]string{fmt.Sprintf("%s's own peer: no --peer answers /v1/cluster with self %q (give it with --self)", w.member, w.member)}, out...)
	default:
		pctx, cancel := context.WithTimeout(ctx, w.probe)
		err := self.Ready(pctx)
		cancel()
		if err != nil {
			out = append([]string{fmt.Sprintf("%s's own peer %s: /readyz: %v", w.member, self.URL(), err)}, out...)
		}
	}
	return out
}

func (w *waitMember) cluster(ctx context.Context, c *api.Client) (*api.ClusterView, error) {
	ctx, cancel := context.WithTimeout(ctx, w.probe)
	defer cancel()
	return c.Cluster(ctx)
}

// viewMissing is what one peer's view (at url) still lacks for member.
func viewMissing(url string, cv *api.ClusterView, member, version string) []string {
	var out []string
	var info *api.MemberInfo
	for i := range cv.Members {
		if cv.Members[i].Name == member {
			info = &cv.Members[i]
		}
	}
	switch {
	case info == nil:
		out = append(out, fmt.Sprintf("%s (self %s): %s is not a live member", url, cv.Self, member))
	case version != "" && info.Version != version:
		out = append(out, fmt.Sprintf("%s (self %s): %s runs version %q, want %q", url, cv.Self, member, info.Version, version))
	}
	if why := local.PlanSettled(cv); why != "" {
		out = append(out, fmt.Sprintf("%s (self %s): plan not settled: %s", url, cv.Self, why))
	}
	if !cv.AllServed() {
		var unserved []string
		for _, v := range cv.Variants {
			if len(cv.Serving[v]) == 0 {
				unserved = append(unserved, v)
			}
		}
		if len(cv.Variants) == 0 {
			unserved = []string{"(the view lists no variants)"}
		}
		out = append(out, fmt.Sprintf("%s (self %s): variants served by no member: %s", url, cv.Self, strings.Join(unserved, ", ")))
	}
	return out
}

// run polls until nothing is missing for w.rounds polls in a row, printing
// each new list of what it waits for, or fails at timeout naming what the
// last poll found missing. Each poll runs to its end (its requests have
// their own timeout), so that the failure names what was missing, not a
// poll cut short: a run may overrun timeout by one poll.
func (w *waitMember) run(ctx context.Context, timeout time.Duration) error {
	start := w.now()
	deadline := start.Add(timeout)
	last, good := "", 0
	for {
		miss := w.missing(ctx)
		elapsed := w.now().Sub(start).Round(100 * time.Millisecond)
		if len(miss) == 0 {
			good++
			if good >= w.rounds {
				fmt.Fprintf(w.out, "%s: ready, a live member in all %d peers' views, plan settled (%s)\n", w.member, len(w.peers), elapsed)
				return nil
			}
		} else {
			good = 0
		}
		// Compared without digits: "/readyz: ... changed 37ms ago" is
		// news only when something else changes.
		if now := strings.Map(noDigits, strings.Join(miss, "\n")); now != last && len(miss) > 0 {
			fmt.Fprintf(w.out, "%s: waiting for %s (%s):\n  %s\n", elapsed, w.member, plural(len(miss), "condition"), strings.Join(miss, "\n  "))
			last = now
		}
		if w.now().Add(w.interval).After(deadline) {
			if len(miss) == 0 {
				miss = []string{fmt.Sprintf("nothing missing in the last poll, but %d polls in a row without are needed", w.rounds)}
			}
			return fmt.Errorf("wait-member %s: not back after %s; still missing:\n  %s", w.member, timeout, strings.Join(miss, "\n  "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait-member %s: %w", w.member, ctx.Err())
		case <-time.After(w.interval):
		}
	}
}

func noDigits(r rune) rune {
	if r >= '0' && r <= '9' {
		return -1
	}
	return r
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func newWaitMemberCmd() *cobra.Command {
	var (
		peers                    []string
		self, member, tokenFile  string
		timeout, interval, probe time.Duration
		rounds                   int
		version                  string
	)
	cmd := &cobra.Command{
		Use:   "wait-member --peer URL [--peer URL ...] --member NAME [--timeout 120s] [--token-file F]",
		Short: "Wait until a peer is back in the cluster: ready, listed by every peer, plan settled",
		Long: `Poll the listed peers until the member NAME is back: its own peer answers /readyz
ok (its URL is one of --peer, found by the self name in its /v1/cluster, or --self),
every --peer's /v1/cluster lists NAME as a live member (running --version, if given),
and in every view the plan has settled (each member serves exactly what the plan gives
it) and every variant is served. All of it must hold for --rounds polls in a row.
Prints what it still waits for whenever that changes; exits 0 when the member is back,
1 at --timeout (plus at most one poll) naming what the last poll found missing.
A rolling upgrade (deploy/ansible upgrade.yml) runs it after each host restarts.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case len(peers) == 0:
				return usagef("--peer URL is required (every peer of the cluster, repeated)")
			case member == "":
				return usagef("--member NAME is required")
			case timeout <= 0 || interval <= 0 || probe <= 0:
				return usagef("--timeout, --interval and --probe-timeout must be positive")
			case rounds < 1:
				return usagef("--rounds must be at least 1, got %d", rounds)
			}
			w := &waitMember{member: member, version: version, rounds: rounds, interval: interval, probe: probe,
				out: cmd.OutOrStdout(), now: time.Now}
			opt := api.WithTokenFile(tokenFile)
			for _, u := range peers {
				c, err := api.NewClient(u, opt)
				if err != nil {
					return usagef("--peer: %v", err)
				}
				w.peers = append(w.peers, c)
			}
			if self != "" {
				c, err := api.NewClient(self, opt)
				if err != nil {
					return usagef("--self: %v", err)
				}
				w.self = c
			}
			return w.run(cmd.Context(), timeout)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&peers, "peer", nil, "API URL (http://host:port) of a peer whose view must list the member; repeat for every peer")
	f.StringVar(&self, "self", "", "API URL of the member's own peer (default: the --peer whose /v1/cluster says self NAME)")
	f.StringVar(&member, "member", "", "node name of the member to wait for")
	f.StringVar(&version, "version", "", "also wait until every view reports the member at this version")
	f.StringVar(&tokenFile, "token-file", "", "file holding the API bearer token")
	f.DurationVar(&timeout, "timeout", 120*time.Second, "give up after this long")
	f.DurationVar(&interval, "interval", 500*time.Millisecond, "time between polls")
	f.DurationVar(&probe, "probe-timeout", 3*time.Second, "timeout of each request")
	f.IntVar(&rounds, "rounds", 2, "polls in a row that must find nothing missing")
	return cmd
}
