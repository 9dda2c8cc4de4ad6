package nn

import (
	"errors"
	"fmt"
)

// ErrPixelBudget is returned (wrapped) when an image header declares more pixels than allowed.
var ErrPixelBudget = errors.New("nn: image exceeds pixel budget")

// FormatError reports a file whose bytes do not follow the format it claims
// (a truncated safetensors header, a manifest that is not JSON, ...).
type FormatError struct {
	File string // path or name of the input, as the caller gave it
	Msg  string // what is wrong
}

func (e *FormatError) Error() string {
	if e.File == "" {
		return "nn: " + e.Msg
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// TensorError reports a tensor that does not match what the model spec expects:
// a wrong shape or dtype, a missing tensor, or an unexpected one.
type TensorError struct {
	File   string // weights file
	Tensor string // tensor name, torchvision state_dict style
	Field  string // "shape", "dtype", "missing", "unexpected", "data"
	Found  string // what the file holds ("" for missing)
	Want   string // what the spec wants ("" for unexpected)
}

func (e *TensorError) Error() string {
	switch e.Field {
	case "missing":
		return fmt.Sprintf("%s: tensor %s is missing, spec wants %s", e.File, e.Tensor, e.Want)
	case "unexpected":
		return fmt.Sprintf("%s: tensor %s (%s) is not part of the spec", e.File, e.Tensor, e.Found)
	default:
		return fmt.Sprintf("%s: tensor %s has %s %s, spec wants %s", e.File, e.Tensor, e.Field, e.Found, e.Want)
	}
}

// SpecError reports an invalid model spec or manifest field.
type SpecError struct {
	Where string // e.g. "family.json: variant w035-r32"
	Field string // e.g. "width_mult"
	Msg   string
}

func (e *SpecError) Error() string {
	if e.Where == "" {
		return fmt.Sprintf("spec: %s: %s", e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Where, e.Field, e.Msg)
}
