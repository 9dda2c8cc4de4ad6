package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/varpar/varpar/p2pnet"
	"github.com/varpar/varpar/peer"
)

func newPeerCmd() *cobra.Command {
	cfg := peer.DefaultConfig()
	var configFile string
	cmd := &cobra.Command{
		Use:   "peer [--config FILE] [flags]",
		Short: "Run a peer of the cluster: gossip, serve variants, answer classify requests",
		Long: `Run one device of a varpar cluster. The peer joins the cluster through the seed
addresses, computes with every other peer the same plan of who serves which variant,
fetches the weights it lacks from peers that have them, and serves its HTTP API.

Settings come from the YAML file given with --config (keys as the flag names with
underscores: node_name, data_dir, gossip_addr, ...), then from flags. SIGINT or SIGTERM
makes the peer leave the cluster gracefully and stop.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			final := peer.DefaultConfig()
			if configFile != "" {
				if err := peer.LoadConfigFile(configFile, &final); err != nil {
					return err
				}
			}
			// Flags the user set win over the file.
			cmd.Flags().Visit(func(f *pflag.Flag) { applyPeerFlag(&final, &cfg, f.Name) })
			logger := newLogger(final.LogLevel)
			p2pnet.RouteLibp2pLogs(logger)
			peer.Version = version
			p, err := peer.New(final, logger)
			if err != nil {
				return err
			}
			if err := p.Start(); err != nil {
				return err
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			s := <-sig
			logger.Info().Str("signal", s.String()).Msg("leaving the cluster")
			if err := p.Leave(5 * time.Second); err != nil {
				logger.Warn().Err(err).Msg("leave")
			}
			return p.Shutdown()
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML configuration file")
	f.StringVar(&cfg.NodeName, "node-name", cfg.NodeName, "unique name of this peer in the cluster")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "identity key and model store")
	f.StringVar(&cfg.GossipAddr, "gossip-addr", cfg.GossipAddr, "gossip (memberlist) listen host:port")
	f.StringVar(&cfg.AdvertiseAddr, "advertise-addr", cfg.AdvertiseAddr, "address other peers reach this one at")
	f.StringVar(&cfg.P2PAddr, "p2p-addr", cfg.P2PAddr, "libp2p TCP listen host:port")
	f.StringSliceVar(&cfg.Seeds, "seeds", cfg.Seeds, "gossip host:port of peers to join (comma-separated)")
	f.StringVar(&cfg.ClusterKey, "cluster-key", cfg.ClusterKey, "file holding the cluster key (varpar keygen)")
	f.StringVar(&cfg.Family, "family", cfg.Family, "family directory (default: the family built into the binary)")
	f.StringSliceVar(&cfg.Pinned, "pinned", cfg.Pinned, "variant ids this peer always serves")
	f.Int64Var(&cfg.MemoryBudget, "memory-budget", cfg.MemoryBudget, "bytes of weights this peer may hold (0: unlimited)")
	f.IntVar(&cfg.Threads, "threads", cfg.Threads, "compute threads (0: all cores)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "HTTP API listen host:port")
	f.StringVar(&cfg.APIToken, "api-token", cfg.APIToken, "file holding the API bearer token (required off loopback)")
	f.IntVar(&cfg.K, "k", cfg.K, "default top-k per answer (0: half the classes)")
	f.IntVar(&cfg.Quorum, "quorum", cfg.Quorum, "default number of variants that must answer")
	f.DurationVar(&cfg.Deadline, "deadline", cfg.Deadline, "default request deadline")
	f.DurationVar(&cfg.HedgeDelay, "hedge-delay", cfg.HedgeDelay, "ask a second replica after this long")
	f.IntVar(&cfg.QueueDepth, "queue-depth", cfg.QueueDepth, "requests queued per served variant")
	f.Int64Var(&cfg.MaxImageBytes, "max-image-bytes", cfg.MaxImageBytes, "largest accepted image in bytes")
	f.Int64Var(&cfg.MaxPixels, "max-pixels", cfg.MaxPixels, "pixel budget per image")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	return cmd
}

// applyPeerFlag copies the setting of one flag the user gave from flags to dst.
func applyPeerFlag(dst, flags *peer.Config, name string) {
	switch name {
	case "node-name":
		dst.NodeName = flags.NodeName
	case "data-dir":
		dst.DataDir = flags.DataDir
	case "gossip-addr":
		dst.GossipAddr = flags.GossipAddr
	case "advertise-addr":
		dst.AdvertiseAddr = flags.AdvertiseAddr
	case "p2p-addr":
		dst.P2PAddr = flags.P2PAddr
	case "seeds":
		dst.Seeds = flags.Seeds
	case "cluster-key":
		dst.ClusterKey = flags.ClusterKey
	case "family":
		dst.Family = flags.Family
	case "pinned":
		dst.Pinned = flags.Pinned
	case "memory-budget":
		dst.MemoryBudget = flags.MemoryBudget
	case "threads":
		dst.Threads = flags.Threads
	case "http-addr":
		dst.HTTPAddr = flags.HTTPAddr
	case "api-token":
		dst.APIToken = flags.APIToken
	case "k":
		dst.K = flags.K
	case "quorum":
		dst.Quorum = flags.Quorum
	case "deadline":
		dst.Deadline = flags.Deadline
	case "hedge-delay":
		dst.HedgeDelay = flags.HedgeDelay
	case "queue-depth":
		dst.QueueDepth = flags.QueueDepth
	case "max-image-bytes":
		dst.MaxImageBytes = flags.MaxImageBytes
	case "max-pixels":
		dst.MaxPixels = flags.MaxPixels
	case "log-level":
		dst.LogLevel = flags.LogLevel
	}
}

// newLogger logs JSON lines, or a readable console format on a terminal.
func newLogger(level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	var out = zerolog.New(os.Stderr)
	if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		out = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly})
	}
	return out.Level(lvl).With().Timestamp().Logger()
}

func newKeygenCmd() *cobra.Command {
	var out, token string
	cmd := &cobra.Command{
		Use:   "keygen --out FILE [--token FILE]",
		Short: "Write a new cluster key (and optionally an API token)",
		Long: `Write a random 32-byte cluster key, base64, mode 0600. Every peer of a cluster needs
the same key: it encrypts the gossip and keys the libp2p private network. With --token,
also write a random API bearer token. Existing files are never overwritten.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out FILE is required")
			}
			if err := peer.NewClusterKey(out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote cluster key %s\n", out)
			if token != "" {
				if err := peer.NewClusterKey(token); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote API token %s\n", token)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the cluster key to")
	cmd.Flags().StringVar(&token, "token", "", "also write an API bearer token to this file")
	return cmd
}
