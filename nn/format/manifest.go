package format

import (
	"github.com/varpar/varpar/nn"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
)

// FamilyFormat is the value of the "format" field of a family.json this code writes and reads.
const FamilyFormat = "varpar-family/1"

// Manifest is the content of a family's family.json.
type Manifest struct {
	Format   string        `json:"format"`         // FamilyFormat
	Name     string        `json:"name"`           // family name
	Classes  []string      `json:"classes"`        // ordered class names; len == every variant's num_classes
	Variants []VariantInfo `json:"variants"`       // the variants that serve
	Base     *VariantInfo  `json:"base,omitempty"` // the full model the variants are compared with, if any

	Training     *TrainingRecord `json:"training,omitempty"`      // how the variants were trained (jointly)
	BaseTraining *TrainingRecord `json:"base_training,omitempty"` // how the base was trained (alone)
}

// VariantInfo is one model of a family.
type VariantInfo struct {
	ID           string  `json:"id"`                      // unique within the family, [A-Za-z0-9._-]
	Spec         nn.Spec `json:"spec"`                    // architecture and preprocessing
	Weights      string  `json:"weights"`                 // safetensors file, relative to the family directory
	SHA256       string  `json:"sha256"`                  // lowercase hex SHA-256 of the weights file
	FusionWeight float64 `json:"fusion_weight,omitempty"` // 0 or absent: the paper's default
}

// Limits on what a family directory may hold.
const (
	maxManifestBytes = 8 << 20
	maxVariants      = 64
	maxClassName     = 256
)

// DecodeManifest parses and validates a family.json. name is used in errors.
// Unknown fields are errors (a typo must not silently change a model), and so
// is anything Validate rejects.
func DecodeManifest(name string, data []byte) (*Manifest, error) {
	if len(data) > maxManifestBytes {
		return nil, &nn.FormatError{File: name, Msg: fmt.Sprintf("%d bytes, more than the %d a manifest may have", len(data), maxManifestBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, &nn.FormatError{File: name, Msg: "not a family manifest: " + err.Error()}
	}
	if dec.More() {
		return nil, &nn.FormatError{File: name, Msg: "trailing data after the JSON object"}
	}
	if err := m.Validate(name); err != nil {
		return nil, err
	}
	return &m, nil
}

var (
	idPattern  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	hexPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Validate checks the manifest's fields; where names the manifest in errors.
func (m *Manifest) Validate(where string) error {
	bad := func(field, format string, args ...any) error {
		return &nn.SpecError{Where: where, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if m.Format != FamilyFormat {
		return bad("format", "%q, want %q", m.Format, FamilyFormat)
	}
	if m.Name == "" {
		return bad("name", "is empty")
	}
	if len(m.Classes) == 0 {
		return bad("classes", "is empty")
	}
	seen := map[string]bool{}
	for i, c := range m.Classes {
		if c == "" || len(c) > maxClassName {
			return bad("classes", "class %d: name must have 1 to %d bytes", i, maxClassName)
		}
		if seen[c] {
			return bad("classes", "class %q appears twice", c)
		}
		seen[c] = true
	}
	if len(m.Variants) == 0 {
		return bad("variants", "is empty")
	}
	if len(m.Variants) > maxVariants {
		return bad("variants", "%d variants, at most %d", len(m.Variants), maxVariants)
	}
	ids := map[string]bool{}
	all := append([]VariantInfo(nil), m.Variants...)
	if m.Base != nil {
		all = append(all, *m.Base)
	}
	for i, v := range all {
		w := fmt.Sprintf("%s: variant %q", where, v.ID)
		if m.Base != nil && i == len(all)-1 {
			w = fmt.Sprintf("%s: base %q", where, v.ID)
		}
		if !idPattern.MatchString(v.ID) {
			return &nn.SpecError{Where: w, Field: "id", Msg: "want 1 to 64 of [A-Za-z0-9._-], starting with a letter or digit"}
		}
		if ids[v.ID] {
			return &nn.SpecError{Where: w, Field: "id", Msg: "appears twice"}
		}
		ids[v.ID] = true
		if err := v.Spec.Validate(); err != nil {
			var se *nn.SpecError
			if errors.As(err, &se) {
				se.Where = w + ": spec"
			}
			return err
		}
		if v.Spec.NumClasses != len(m.Classes) {
			return &nn.SpecError{Where: w, Field: "spec.num_classes", Msg: fmt.Sprintf("%d, but the family has %d classes", v.Spec.NumClasses, len(m.Classes))}
		}
		if v.Weights == "" || filepath.IsAbs(v.Weights) || v.Weights != filepath.Base(v.Weights) || strings.HasPrefix(v.Weights, ".") {
			return &nn.SpecError{Where: w, Field: "weights", Msg: fmt.Sprintf("%q must be a plain file name inside the family directory", v.Weights)}
		}
		if !hexPattern.MatchString(v.SHA256) {
			return &nn.SpecError{Where: w, Field: "sha256", Msg: fmt.Sprintf("%q is not 64 lowercase hex digits", v.SHA256)}
		}
		if v.FusionWeight < 0 || math.IsNaN(v.FusionWeight) || math.IsInf(v.FusionWeight, 0) {
			return &nn.SpecError{Where: w, Field: "fusion_weight", Msg: fmt.Sprintf("%v, want a positive number (or 0 for the default)", v.FusionWeight)}
		}
	}
	return nil
}

// FusionWeights returns each variant's fusion weight: the manifest's, or where
// it is 0 the paper's (resolution / max resolution) * (width / min width)^2 over
// the family's variants.
func (m *Manifest) FusionWeights() []float64 {
	return m.fusionWeights(2, true)
}

// FusionWeightsExp is the paper's rule with another exponent of the width,
// (resolution / max resolution) * (width / min width)^e, for every variant
// (the manifest's own weights are ignored): its public code moved from e = 2
// to e = 1.15.
func (m *Manifest) FusionWeightsExp(e float64) []float64 {
	return m.fusionWeights(e, false)
}

func (m *Manifest) fusionWeights(e float64, own bool) []float64 {
	maxRes, minWidth := 0, math.Inf(1)
	for _, v := range m.Variants {
		if v.Spec.Resolution > maxRes {
			maxRes = v.Spec.Resolution
		}
		minWidth = math.Min(minWidth, v.Spec.WidthMult)
	}
	out := make([]float64, len(m.Variants))
	for i, v := range m.Variants {
		if own && v.FusionWeight > 0 {
			out[i] = v.FusionWeight
			continue
		}
		r := float64(v.Spec.Resolution) / float64(maxRes)
		w := v.Spec.WidthMult / minWidth
		if e == 2 {
			out[i] = r * w * w // bit for bit as before the exponent was a parameter
		} else {
			out[i] = r * math.Pow(w, e)
		}
	}
	return out
}
