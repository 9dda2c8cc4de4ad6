// Command varpar runs one image classifier as an ensemble of MobileNetV2
// variants spread over small devices. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

// version is set at link time by make release.
var version = "dev"

func main() {
	err := newRootCmd().Execute()
	stopProfile() // also when the command failed, which skips cobra's post-run hooks
	if err != nil {
		fmt.Fprintln(os.Stderr, "varpar:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// stopProfile ends the --cpuprofile profile, if one was started.
var stopProfile = func() {}

// usageError marks a bad flag or argument (exit status 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "varpar",
		Short: "Variant-parallel image classification on small devices",
		Long: `varpar runs one image classifier as an ensemble of lighter MobileNetV2 variants.
Each device runs one variant and answers with its top-k scores; the scores are fused,
so losing devices costs accuracy, never availability.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	var profile string
	root.PersistentFlags().StringVar(&profile, "cpuprofile", "", "write a Go CPU profile of the command to this file (for go tool pprof)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if profile == "" {
			return nil
		}
		f, err := os.Create(profile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		stopProfile = func() {
			pprof.StopCPUProfile()
			f.Close()
		}
		return nil
	}

	root.AddCommand(newFamilyCmd(), newPredictCmd(), newBenchCmd(), newTrainCmd(), newEvalCmd(), newPeerCmd(), newKeygenCmd(), newClassifyCmd(), newLoadgenCmd(), newDemoCmd())
	root.AddCommand(newVersionCmd(), newWaitMemberCmd()) // deployment: the role reads version, upgrade.yml runs wait-member
	return root
}

// usageArgs wraps a cobra argument check so that its failure is a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
