package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/varpar/varpar/peer"
)

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
