package format

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/varpar/varpar/nn"
)

// DecodeVariant checks the bytes of a variant's weights file against the
// manifest's SHA-256 before decoding a byte of them, then decodes them and
// builds the variant's model. name names the file in errors.
func DecodeVariant(name string, data []byte, v VariantInfo) (*nn.Model, error) {
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != v.SHA256 {
		return nil, &ChecksumError{File: name, Found: got, Want: v.SHA256}
	}
	st, err := DecodeSafetensors(name, data)
	if err != nil {
		return nil, err
	}
	return nn.NewModel(v.Spec, st.Weights(), name)
}

// Weights gives the decoded tensors in the form nn.NewModel takes.
func (st *Safetensors) Weights() nn.Weights {
	return nn.Weights{Names: st.Names, Tensors: st.Tensors, DTypes: st.DTypes}
}
