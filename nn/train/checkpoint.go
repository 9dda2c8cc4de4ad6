package train

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/varpar/varpar/internal/atomicfile"
	"github.com/varpar/varpar/nn"
	"github.com/varpar/varpar/nn/format"
	"gorgonia.org/tensor"
)

// Exporting trained weights, and checkpoints to resume training.
//
// A checkpoint is one safetensors file (F32, so every value round-trips
// bit for bit) holding, for each model i, its state_dict tensors as
// "model.<i>.<name>" and its momentum buffers as "momentum.<i>.<name>", and in
// its metadata the format version, the step counter, each model's spec (to
// refuse a checkpoint of other models) and the caller's own entries.
// Dropout masks derive from the seed and the step counter, so nothing else is
// needed to resume a run bit-exactly.

// Metadata keys the trainer writes; callers' keys may not start with
// ckptPrefix.
const (
	ckptPrefix  = "varpar."
	ckptVersion = ckptPrefix + "checkpoint"
	ckptSteps   = ckptPrefix + "steps"
	ckptModels  = ckptPrefix + "models"
	ckptSpec    = ckptPrefix + "spec."
)

// Weights exports model i as torchvision-named tensors (Spec.Tensors()
// order, num_batches_tracked left out, batch-norm running statistics
// included), ready for WriteSafetensors and NewModel. The tensors are copies.
func (t *Trainer) Weights(i int) (names []string, tensors map[string]*tensor.Dense) {
	n := t.nets[i]
	tensors = make(map[string]*tensor.Dense, len(n.tensors))
	for _, p := range n.tensors {
		names = append(names, p.name)
		data := append([]float32(nil), n.tensorData(p, n.params)...)
		tensors[p.name] = tensor.New(tensor.WithShape(p.shape...), tensor.WithBacking(data))
	}
	return names, tensors
}

// tensorData returns the elements of p: in stats for a running statistic,
// else in params (or the grads or momentum slice given in its place).
func (n *tnet) tensorData(p tparam, params []float32) []float32 {
	if p.stat {
		return n.stats[p.off : p.off+p.n]
	}
	return params[p.off : p.off+p.n]
}

// SaveCheckpoint writes a checkpoint (see WriteCheckpoint) to path,
// atomically: path holds either the old or the new checkpoint, never a torn
// one, even after kill -9 or a power cut.
func (t *Trainer) SaveCheckpoint(path string, meta map[string]string) error {
	// 0600 as before: a checkpoint is a run's private scratch, not a
	// published weights file.
	err := atomicfile.WriteFunc(path, 0o600, func(w io.Writer) error { return t.WriteCheckpoint(w, meta) })
	if err != nil {
		return fmt.Errorf("train: SaveCheckpoint %s: %w", path, err)
	}
	return nil
}

// WriteCheckpoint writes everything needed to resume training bit-exactly,
// plus the caller's metadata (epoch, data order, ...; keys must not start
// with "varpar."), to w as a safetensors file.
func (t *Trainer) WriteCheckpoint(w io.Writer, meta map[string]string) error {
	md := make(map[string]string, len(meta)+3+len(t.nets))
	for k, v := range meta {
		if strings.HasPrefix(k, ckptPrefix) {
			return fmt.Errorf("train: WriteCheckpoint: metadata key %q: the %q prefix is the trainer's", k, ckptPrefix)
		}
		md[k] = v
	}
	md[ckptVersion] = "1"
	md[ckptSteps] = strconv.Itoa(t.steps)
	md[ckptModels] = strconv.Itoa(len(t.nets))
	var names []string
	tensors := map[string]*tensor.Dense{}
	for i, n := range t.nets {
		js, err := json.Marshal(n.spec)
		if err != nil {
			return fmt.Errorf("train: WriteCheckpoint: %w", err)
		}
		md[ckptSpec+strconv.Itoa(i)] = string(js)
		for _, p := range n.tensors {
			name := fmt.Sprintf("model.%d.%s", i, p.name)
			names = append(names, name)
			tensors[name] = tensor.New(tensor.WithShape(p.shape...), tensor.WithBacking(n.tensorData(p, n.params)))
		}
		for _, p := range n.tensors {
			if p.stat {
				continue
			}
			name := fmt.Sprintf("momentum.%d.%s", i, p.name)
			names = append(names, name)
			tensors[name] = tensor.New(tensor.WithShape(p.shape...), tensor.WithBacking(n.tensorData(p, n.mom)))
		}
	}
	return format.WriteSafetensors(w, names, tensors, md)
}

// LoadCheckpoint restores a checkpoint written by SaveCheckpoint for the
// same models and returns the caller's metadata. It checks everything before
// it changes anything: on error the trainer is as it was. Errors name the
// file and, for tensors, the tensor (*TensorError), for specs the model
// (*SpecError).
func (t *Trainer) LoadCheckpoint(path string) (meta map[string]string, err error) {
	st, err := format.ReadSafetensors(path)
	if err != nil {
		return nil, err
	}
	return t.restore(path, st)
}

// ReadCheckpoint is LoadCheckpoint for a checkpoint's bytes; name names them
// in errors.
func (t *Trainer) ReadCheckpoint(name string, data []byte) (meta map[string]string, err error) {
	st, err := format.DecodeSafetensors(name, data)
	if err != nil {
		return nil, err
	}
	return t.restore(name, st)
}

// restore is LoadCheckpoint after the file is decoded; path is for errors.
func (t *Trainer) restore(path string, st *format.Safetensors) (meta map[string]string, err error) {
	md := st.Metadata
	if v := md[ckptVersion]; v != "1" {
		return nil, &nn.FormatError{File: path, Msg: fmt.Sprintf("not a varpar training checkpoint (%s is %q, want \"1\")", ckptVersion, v)}
	}
	steps, err := strconv.Atoi(md[ckptSteps])
	if err != nil || steps < 0 {
		return nil, &nn.FormatError{File: path, Msg: fmt.Sprintf("%s is %q, want a step count", ckptSteps, md[ckptSteps])}
	}
	if m := md[ckptModels]; m != strconv.Itoa(len(t.nets)) {
		return nil, &nn.SpecError{Where: path, Field: "models", Msg: fmt.Sprintf("checkpoint has %s models, trainer has %d", m, len(t.nets))}
	}
	want := map[string]bool{}
	for i, n := range t.nets {
		key := ckptSpec + strconv.Itoa(i)
		var s nn.Spec
		if err := json.Unmarshal([]byte(md[key]), &s); err != nil {
			return nil, &nn.FormatError{File: path, Msg: fmt.Sprintf("%s: %v", key, err)}
		}
		if !reflect.DeepEqual(normSpec(s), normSpec(n.spec)) {
			mine, _ := json.Marshal(n.spec)
			return nil, &nn.SpecError{Where: path, Field: fmt.Sprintf("model %d", i),
				Msg: fmt.Sprintf("checkpoint is of spec %s, trainer has %s", md[key], mine)}
		}
		for _, p := range n.tensors {
			if err := checkCkptTensor(st, path, fmt.Sprintf("model.%d.%s", i, p.name), p.shape, want); err != nil {
				return nil, err
			}
			if !p.stat {
				if err := checkCkptTensor(st, path, fmt.Sprintf("momentum.%d.%s", i, p.name), p.shape, want); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, name := range st.Names {
		if !want[name] {
			return nil, &nn.TensorError{File: path, Tensor: name, Field: "unexpected", Found: fmt.Sprint([]int(st.Tensors[name].Shape()))}
		}
	}

	for i, n := range t.nets {
		for _, p := range n.tensors {
			copy(n.tensorData(p, n.params), st.Tensors[fmt.Sprintf("model.%d.%s", i, p.name)].Float32s())
			if !p.stat {
				copy(n.tensorData(p, n.mom), st.Tensors[fmt.Sprintf("momentum.%d.%s", i, p.name)].Float32s())
			}
		}
		t.repack(n)
	}
	t.steps = steps
	meta = map[string]string{}
	for k, v := range md {
		if !strings.HasPrefix(k, ckptPrefix) {
			meta[k] = v
		}
	}
	return meta, nil
}

// normSpec makes a spec comparable after a JSON round trip: an empty setting
// and a nil one are the same.
func normSpec(s nn.Spec) nn.Spec {
	if len(s.Setting) == 0 {
		s.Setting = nil
	}
	return s
}

func checkCkptTensor(st *format.Safetensors, path, name string, shape []int, want map[string]bool) error {
	want[name] = true
	got, ok := st.Tensors[name]
	if !ok {
		return &nn.TensorError{File: path, Tensor: name, Field: "missing", Want: fmt.Sprint(shape)}
	}
	if dt := st.DTypes[name]; dt != "F32" {
		return &nn.TensorError{File: path, Tensor: name, Field: "dtype", Found: dt, Want: "F32"}
	}
	if !nn.SameShape(got.Shape(), shape) {
		return &nn.TensorError{File: path, Tensor: name, Field: "shape", Found: fmt.Sprint([]int(got.Shape())), Want: fmt.Sprint(shape)}
	}
	// A damaged value would poison every step after the resume.
	for _, v := range got.Float32s() {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return &nn.TensorError{File: path, Tensor: name, Field: "data", Found: "a non-finite value", Want: "finite values"}
		}
	}
	return nil
}
