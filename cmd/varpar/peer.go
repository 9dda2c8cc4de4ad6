package main

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/varpar/varpar/p2pnet"
	"github.com/varpar/varpar/peer"
)

func newPeerCmd() *cobra.Command {
	var (
		configFile string
		flags      *peer.ConfigFlags
	)
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
			flags.Apply(&final) // flags the user set win over the file

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
	flags = peer.BindFlags(f, peer.DefaultConfig())
	return cmd
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
