package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/varpar/varpar/nn/format"
)

func newFamilyCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "family --family DIR",
		Short: "Show a model family: per variant its width, resolution, parameters and MACs",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef("--family DIR is required")
			}
			f, err := format.LoadFamily(dir)
			if err != nil {
				return err
			}
			return printFamily(cmd.OutOrStdout(), f, asJSON)
		},
	}
	cmd.Flags().StringVar(&dir, "family", "", "family directory (holding family.json)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.AddCommand(newFamilyNewCmd())
	return cmd
}

// familyRow is one line of `varpar family`, and its JSON form.
type familyRow struct {
	ID           string  `json:"id"`
	Role         string  `json:"role"` // "variant" or "base"
	Width        float64 `json:"width_mult"`
	Resolution   int     `json:"resolution"`
	StemStride   int     `json:"stem_stride"`
	LastChannel  int     `json:"last_channel"`
	Params       int64   `json:"params"`
	MACs         int64   `json:"macs"`
	FusionWeight float64 `json:"fusion_weight,omitempty"`
	ParamsRatio  float64 `json:"params_ratio,omitempty"` // base params / variant params
	MACsRatio    float64 `json:"macs_ratio,omitempty"`   // base MACs / variant MACs
}

func printFamily(w io.Writer, f *format.Family, asJSON bool) error {
	m := f.Manifest
	var rows []familyRow
	row := func(v format.VariantInfo, role string, fw float64) familyRow {
		r := familyRow{ID: v.ID, Role: role, Width: v.Spec.WidthMult, Resolution: v.Spec.Resolution,
			StemStride: v.Spec.StemStride, LastChannel: v.Spec.LastChannel,
			Params: v.Spec.Params(), MACs: v.Spec.MACs(), FusionWeight: fw}
		if m.Base != nil && role == "variant" {
			r.ParamsRatio = float64(m.Base.Spec.Params()) / float64(r.Params)
			r.MACsRatio = float64(m.Base.Spec.MACs()) / float64(r.MACs)
		}
		return r
	}
	for i, v := range m.Variants {
		rows = append(rows, row(v, "variant", f.Weights[i]))
	}
	if m.Base != nil {
		rows = append(rows, row(*m.Base, "base", 0))
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Name    string      `json:"name"`
			Classes []string    `json:"classes"`
			Models  []familyRow `json:"models"`
		}{m.Name, m.Classes, rows})
	}
	fmt.Fprintf(w, "family %s: %d classes, %d variants\n", m.Name, len(m.Classes), len(m.Variants))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "id\trole\twidth\tres\tstem\tparams\tMACs\tfusion w\tparams ratio\tMACs ratio\t")
	for _, r := range rows {
		ratio := func(x float64) string {
			if x == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1fx", x)
		}
		fw := "-"
		if r.FusionWeight > 0 {
			fw = fmt.Sprintf("%.3g", r.FusionWeight)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3g\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.ID, r.Role, r.Width, r.Resolution, r.StemStride,
			human(r.Params), human(r.MACs), fw, ratio(r.ParamsRatio), ratio(r.MACsRatio))
	}
	return tw.Flush()
}

func human(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
