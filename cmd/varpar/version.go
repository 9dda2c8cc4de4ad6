package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/varpar/varpar/nn"
)

// versionInfo is what varpar version prints: the release (stamped by make
// release with -X main.version), the toolchain and where it runs. The
// ansible role compares the first line with the version it installed.
type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	GOARM     string `json:"goarm,omitempty"` // arm only: the GOARM the binary was built for
	ISA       string `json:"isa"`             // the kernels' instruction set on this CPU
}

func currentVersion() versionInfo {
	v := versionInfo{Version: version, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, ISA: nn.ISA()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" {
				v.GOARM = s.Value
			}
		}
	}
	return v
}

// write prints the first line "varpar <version>" (the one scripts read),
// then one "key: value" line per detail; or the whole as JSON.
func (v versionInfo) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	arch := v.Arch
	if v.GOARM != "" {
		arch += " (GOARM=" + v.GOARM + ")"
	}
	_, err := fmt.Fprintf(w, "varpar %s\ngo: %s\nplatform: %s/%s\nisa: %s\n", v.Version, v.GoVersion, v.OS, arch, v.ISA)
	return err
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version, the Go toolchain, the platform and the kernels' instruction set",
		Long: `Print "varpar <version>" on the first line (make release stamps the version in;
a plain go build says "dev"), then the Go version it was built with, the platform
(GOOS/GOARCH) and the instruction set the inference kernels picked on this CPU
(avx512, avx2 or generic; VARPAR_ISA can lower it). --json prints the same as
one JSON object.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return currentVersion().write(cmd.OutOrStdout(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
