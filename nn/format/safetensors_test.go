package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/varpar/varpar/nn"
	"gorgonia.org/tensor"
)

// stFile assembles a safetensors file from a raw header string and buffer,
// so tests can build exactly the malformed inputs they need.
func stFile(header string, buf []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(buf))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, buf...)
}

func le16(vs ...uint16) []byte {
	b := make([]byte, 2*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint16(b[2*i:], v)
	}
	return b
}

func f32Tensor(shape []int, vals ...float32) *tensor.Dense {
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(vals))
}

func TestSafetensorsRoundTrip(t *testing.T) {
	names := []string{"features.0.0.weight", "features.0.1.num_batches_tracked", "empty", "classifier.1.bias", "weird \"name\" <&> é"}
	tensors := map[string]*tensor.Dense{
		"features.0.0.weight":              f32Tensor([]int{2, 1, 2, 2}, 1, -2, 3.5, float32(math.Inf(1)), 0, float32(math.Copysign(0, -1)), 1e-40, math.MaxFloat32),
		"features.0.1.num_batches_tracked": tensor.New(tensor.FromScalar(float32(7))),
		"empty":                            f32Tensor([]int{0, 3}),
		"classifier.1.bias":                f32Tensor([]int{3}, 0.5, 0.25, -0.125),
		"weird \"name\" <&> é":             f32Tensor([]int{1}, float32(math.NaN())),
	}
	meta := map[string]string{"format": "pt", "note": "round \"trip\"\n"}
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, names, tensors, meta); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if n := binary.LittleEndian.Uint64(data); (8+n)%8 != 0 {
		t.Errorf("header length %d does not align the data buffer to 8", n)
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(st.Names, "|") != strings.Join(names, "|") {
		t.Errorf("names %q, want %q", st.Names, names)
	}
	for _, n := range names {
		got, want := st.Tensors[n], tensors[n]
		if !got.Shape().Eq(want.Shape()) || len(got.Shape()) != len(want.Shape()) {
			t.Errorf("%s: shape %v, want %v", n, got.Shape(), want.Shape())
		}
		if !sameBits(got.Float32s(), want.Float32s()) {
			t.Errorf("%s: values %v, want %v", n, got.Float32s(), want.Float32s())
		}
		if st.DTypes[n] != "F32" {
			t.Errorf("%s: dtype %s", n, st.DTypes[n])
		}
	}
	if s := st.Tensors["features.0.1.num_batches_tracked"]; s.Dims() != 0 || s.Float32s()[0] != 7 {
		t.Errorf("scalar decoded as shape %v values %v, want shape () value 7", s.Shape(), s.Float32s())
	}
	if len(st.Metadata) != 2 || st.Metadata["format"] != "pt" || st.Metadata["note"] != meta["note"] {
		t.Errorf("metadata %q, want %q", st.Metadata, meta)
	}

	// Writing the decoded file again gives the same bytes.
	var again bytes.Buffer
	if err := WriteSafetensors(&again, st.Names, st.Tensors, st.Metadata); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), data) {
		t.Error("re-encoding a decoded file changed its bytes")
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestWriteSafetensorsView(t *testing.T) {
	full := f32Tensor([]int{3, 2}, 1, 2, 3, 4, 5, 6)
	v, err := full.Slice(tensor.S(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteSafetensors(&buf, []string{"v"}, map[string]*tensor.Dense{"v": v.(*tensor.Dense)}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := DecodeSafetensors("view", buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Tensors["v"].Float32s(); !sameBits(got, []float32{3, 4, 5, 6}) {
		t.Errorf("view written as %v, want [3 4 5 6]", got)
	}
}

func TestWriteSafetensorsErrors(t *testing.T) {
	a := f32Tensor([]int{1}, 1)
	cases := []struct {
		name    string
		names   []string
		tensors map[string]*tensor.Dense
		want    string
	}{
		{"missing", []string{"a", "b"}, map[string]*tensor.Dense{"a": a}, `no tensor for name "b"`},
		{"extra", []string{"a"}, map[string]*tensor.Dense{"a": a, "b": a}, `"b" is not in names`},
		{"twice", []string{"a", "a"}, map[string]*tensor.Dense{"a": a}, "given twice"},
		{"reserved", []string{"__metadata__"}, map[string]*tensor.Dense{"__metadata__": a}, "reserved"},
		{"dtype", []string{"i"}, map[string]*tensor.Dense{"i": tensor.New(tensor.WithShape(1), tensor.WithBacking([]int64{1}))}, "want float32"},
	}
	for _, c := range cases {
		err := WriteSafetensors(&bytes.Buffer{}, c.names, c.tensors, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestF16ToF32(t *testing.T) {
	cases := []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xbc00, -1},
		{0x3555, 0.333251953125},
		{0x4248, 3.140625},
		{0x7bff, 65504},                 // largest normal
		{0x0400, 6.103515625e-05},       // smallest normal, 2^-14
		{0x0001, 5.960464477539063e-08}, // smallest subnormal, 2^-24
		{0x03ff, 6.097555160522461e-05}, // largest subnormal, 1023 × 2^-24
		{0x8001, -5.960464477539063e-08},
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
	}
	for _, c := range cases {
		if got := f16ToF32(c.h); math.Float32bits(got) != math.Float32bits(c.want) {
			t.Errorf("f16 %#04x = %g, want %g", c.h, got, c.want)
		}
	}
	if got := f16ToF32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("f16 -0 = %g (signbit %v)", got, math.Signbit(float64(got)))
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		if got := f16ToF32(h); !math.IsNaN(float64(got)) {
			t.Errorf("f16 %#04x = %g, want NaN", h, got)
		}
	}
	// A signalling NaN stays signalling (quiet bit clear, payload kept).
	if b := math.Float32bits(f16ToF32(0x7c01)); b != 0x7f802000 {
		t.Errorf("f16 sNaN 0x7c01 → %#08x, want 0x7f802000", b)
	}
	// Every finite half round-trips through float64 arithmetic exactly.
	for h := 0; h < 1<<16; h++ {
		exp := h >> 10 & 0x1f
		if exp == 0x1f {
			continue
		}
		mant := float64(h & 0x3ff)
		var v float64
		if exp == 0 {
			v = mant * math.Pow(2, -24)
		} else {
			v = (1 + mant/1024) * math.Pow(2, float64(exp-15))
		}
		if h&0x8000 != 0 {
			v = -v
		}
		if got := f16ToF32(uint16(h)); float64(got) != v {
			t.Fatalf("f16 %#04x = %g, want %g", h, got, v)
		}
	}
}

func TestBF16AndF8Conversions(t *testing.T) {
	bf := []struct {
		h    uint16
		want float32
	}{
		{0x3f80, 1}, {0xc000, -2}, {0x4049, 3.140625}, {0x0001, 9.183549615799121e-41},
		{0x7f80, float32(math.Inf(1))}, {0xff80, float32(math.Inf(-1))}, {0x7f7f, 3.3895313892515355e+38},
	}
	dst := make([]float32, 1)
	for _, c := range bf {
		convBF16(dst, le16(c.h))
		if math.Float32bits(dst[0]) != math.Float32bits(c.want) {
			t.Errorf("bf16 %#04x = %g, want %g", c.h, dst[0], c.want)
		}
	}
	convBF16(dst, le16(0x7fc0))
	if !math.IsNaN(float64(dst[0])) {
		t.Errorf("bf16 0x7fc0 = %g, want NaN", dst[0])
	}
	e4 := map[uint8]float32{0x38: 1, 0xb8: -1, 0x7e: 448, 0x01: 0.001953125, 0x08: 0.015625, 0x00: 0}
	for b, want := range e4 {
		if got := f8e4m3ToF32(b); got != want {
			t.Errorf("f8e4m3 %#02x = %g, want %g", b, got, want)
		}
	}
	if !math.IsNaN(float64(f8e4m3ToF32(0x7f))) || !math.IsNaN(float64(f8e4m3ToF32(0xff))) {
		t.Error("f8e4m3 S.1111.111 is not NaN")
	}
	e5 := map[uint8]float32{0x3c: 1, 0x7b: 57344, 0x01: 1.52587890625e-05, 0x7c: float32(math.Inf(1))}
	for b, want := range e5 {
		convF8E5M2(dst, []byte{b})
		if dst[0] != want {
			t.Errorf("f8e5m2 %#02x = %g, want %g", b, dst[0], want)
		}
	}
}

// TestSafetensorsDTypes decodes one tensor of every dtype from a hand-built file.
func TestSafetensorsDTypes(t *testing.T) {
	le := binary.LittleEndian
	f64 := make([]byte, 16)
	le.PutUint64(f64, math.Float64bits(1.5))
	le.PutUint64(f64[8:], math.Float64bits(-1e300)) // overflows float32 → -Inf
	i64 := make([]byte, 16)
	le.PutUint64(i64, uint64(12345))
	neg := int64(-3)
	le.PutUint64(i64[8:], uint64(neg))
	i32 := make([]byte, 8)
	le.PutUint32(i32, uint32(0x7fffffff))
	m1 := int32(-1)
	le.PutUint32(i32[4:], uint32(m1))
	cases := []struct {
		dtype string
		data  []byte
		want  []float32
	}{
		{"F64", f64, []float32{1.5, float32(math.Inf(-1))}},
		{"F16", le16(0x3c00, 0x0001), []float32{1, 5.960464477539063e-08}},
		{"BF16", le16(0x3f80, 0xc000), []float32{1, -2}},
		{"I64", i64, []float32{12345, -3}},
		{"I32", i32, []float32{2147483648, -1}},
		{"I16", le16(0x8000, 7), []float32{-32768, 7}},
		{"U16", le16(0xffff, 7), []float32{65535, 7}},
		{"I8", []byte{0x80, 0x7f}, []float32{-128, 127}},
		{"U8", []byte{0xff, 3}, []float32{255, 3}},
		{"BOOL", []byte{0, 2}, []float32{0, 1}},
		{"F8_E4M3", []byte{0x38, 0x7e}, []float32{1, 448}},
		{"F8_E5M2", []byte{0x3c, 0xbc}, []float32{1, -1}},
	}
	for _, c := range cases {
		header := `{"t":{"dtype":"` + c.dtype + `","shape":[2],"data_offsets":[0,` + strconv.Itoa(len(c.data)) + `]}}`
		st, err := DecodeSafetensors(c.dtype, stFile(header, c.data))
		if err != nil {
			t.Errorf("%s: %v", c.dtype, err)
			continue
		}
		if got := st.Tensors["t"].Float32s(); !sameBits(got, c.want) {
			t.Errorf("%s: %v, want %v", c.dtype, got, c.want)
		}
		if st.DTypes["t"] != c.dtype {
			t.Errorf("%s: DTypes says %s", c.dtype, st.DTypes["t"])
		}
	}

	// PyTorch's num_batches_tracked: an I64 scalar, shape [].
	nbt := make([]byte, 8)
	le.PutUint64(nbt, 100)
	st, err := DecodeSafetensors("nbt", stFile(`{"n":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`, nbt))
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Tensors["n"]; n.Dims() != 0 || len(n.Float32s()) != 1 || n.Float32s()[0] != 100 {
		t.Errorf("I64 scalar: shape %v values %v", n.Shape(), n.Float32s())
	}
}

func TestSafetensorsEmptyAndOrder(t *testing.T) {
	// No tensors at all is a valid (if useless) file.
	st, err := DecodeSafetensors("empty", stFile(`{}`, nil))
	if err != nil || len(st.Names) != 0 || st.Metadata == nil {
		t.Fatalf("empty file: %v, %+v", err, st)
	}
	// Names follow data offsets, not header order; empty tensors sharing an
	// offset are ordered by name.
	h := `{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"z":{"dtype":"U8","shape":[0],"data_offsets":[1,1]},` +
		`"y":{"dtype":"U8","shape":[0,5],"data_offsets":[1,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"__metadata__":null}`
	st, err = DecodeSafetensors("order", stFile(h, []byte{10, 20}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(st.Names, ","); got != "a,y,z,b" {
		t.Errorf("names %s, want a,y,z,b", got)
	}
	if sh := st.Tensors["y"].Shape(); len(sh) != 2 || sh[0] != 0 || sh[1] != 5 {
		t.Errorf("empty tensor shape %v, want (0, 5)", sh)
	}
	// Header padded with spaces (and other JSON whitespace) is fine.
	if _, err := DecodeSafetensors("pad", stFile("\n {\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}} \t\r\n  ", []byte{1})); err != nil {
		t.Errorf("padded header: %v", err)
	}
}

func TestSafetensorsMalformed(t *testing.T) {
	one := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	four := make([]byte, 4)
	hugeLen := make([]byte, 16)
	binary.LittleEndian.PutUint64(hugeLen, 1<<40)
	pastEnd := make([]byte, 16)
	binary.LittleEndian.PutUint64(pastEnd, 100)

	cases := []struct {
		name   string
		data   []byte
		want   string // substring of the error
		tensor string // tensor the error must name ("" for none)
	}{
		{"empty file", nil, "too short for the 8-byte header length", ""},
		{"7 bytes", make([]byte, 7), "too short", ""},
		{"header over limit", hugeLen, "more than the 100000000-byte limit", ""},
		{"header past end", pastEnd, "runs past the end of the file", ""},
		{"zero header", stFile("", nil), "header is empty", ""},
		{"not json", stFile("{nope", nil), "not valid JSON", ""},
		{"array header", stFile(`[1,2]`, nil), "is an array, not a JSON object", ""},
		{"string header", stFile(`"x"`, nil), "is a string, not a JSON object", ""},
		{"null header", stFile(`null`, nil), "is null, not a JSON object", ""},
		{"trailing garbage", stFile(one+`x`, four), "not valid JSON after the object", ""},
		{"two objects", stFile(one+`{}`, four), "after the JSON object", ""},
		{"nul padding", stFile(one+"\x00\x00", four), "not valid JSON after the object", ""},
		{"truncated json", stFile(one[:len(one)-1], four), "not valid JSON", ""},
		{"duplicate tensor", stFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), `duplicate key "a"`, ""},
		{"duplicate field", stFile(`{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}), `duplicate key "dtype"`, "a"},
		{"metadata not object", stFile(`{"__metadata__":[1]}`, nil), "__metadata__: is an array", ""},
		{"metadata non-string", stFile(`{"__metadata__":{"k":1}}`, nil), `value of "k" is 1, not a string`, ""},
		{"entry not object", stFile(`{"a":[1]}`, nil), "entry: is an array", "a"},
		{"no dtype", stFile(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, four), "no dtype", "a"},
		{"no shape", stFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, four), "no shape", "a"},
		{"no offsets", stFile(`{"a":{"dtype":"F32","shape":[1]}}`, four), "no data_offsets", "a"},
		{"unknown field", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, four), `unknown field "x"`, "a"},
		{"unknown dtype", stFile(`{"a":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}}`, four), `unknown dtype "F31"`, "a"},
		{"dtype not string", stFile(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, four), "dtype 4 is not a string", "a"},
		{"negative dim", stFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, four), "shape element 0 is -1, negative", "a"},
		{"fractional dim", stFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, four), "shape element 0 is 1.5, not an integer", "a"},
		{"string dim", stFile(`{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, four), "shape element 0 is a string, not an integer", "a"},
		{"shape not array", stFile(`{"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}}`, four), "shape is 1, not an array", "a"},
		{"huge dim", stFile(`{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}`, four), "too large", "a"},
		{"overflowing shape", stFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, four), "too many elements", "a"},
		{"rank too high", stFile(`{"a":{"dtype":"F32","shape":[`+strings.Repeat("1,", 64)+`1],"data_offsets":[0,4]}}`, four), "more than 64 elements", "a"},
		{"one offset", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, four), "data_offsets has 1 numbers, want 2", "a"},
		{"three offsets", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, four), "data_offsets has more than 2", "a"},
		{"negative offset", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, four), "data_offsets element 0 is -4, negative", "a"},
		{"begin after end", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, four), "begin is after end", "a"},
		{"past buffer", stFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}`, four), "run past the end of the 4-byte data buffer", "a"},
		{"wrong size", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, four), "hold 4 bytes, but F32 shape [2] needs 8", "a"},
		{"truncated data", stFile(one, four[:3]), "run past the end of the 3-byte data buffer", "a"},
		{"trailing bytes", stFile(one, make([]byte, 6)), "2 trailing bytes belong to no tensor", ""},
		{"hole", stFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), "leave a hole: bytes [0, 1)", "a"},
		{"overlap", stFile(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), `overlap tensor "a"`, "b"},
		{"same range twice", stFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}), "overlap", "b"},
	}
	for _, c := range cases {
		st, err := DecodeSafetensors("bad.safetensors", c.data)
		if err == nil {
			t.Errorf("%s: decoded without error: %v", c.name, st.Names)
			continue
		}
		var fe *nn.FormatError
		if !errors.As(err, &fe) || fe.File != "bad.safetensors" {
			t.Errorf("%s: error %T %v is not a *FormatError naming the file", c.name, err, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) {
			t.Errorf("%s: error %q does not say %q", c.name, msg, c.want)
		}
		if c.tensor != "" && !strings.Contains(msg, `tensor "`+c.tensor+`"`) {
			t.Errorf("%s: error %q does not name tensor %q", c.name, msg, c.tensor)
		}
		if !strings.HasPrefix(msg, "bad.safetensors: ") {
			t.Errorf("%s: error %q does not start with the file name", c.name, msg)
		}
	}
}

func TestReadSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadSafetensors(filepath.Join(dir, "nope.safetensors")); err == nil || !strings.Contains(err.Error(), "nope.safetensors") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, []byte("garbage!garbage!"), 0o644)
	if _, err := ReadSafetensors(bad); err == nil || !strings.HasPrefix(err.Error(), bad+": ") {
		t.Errorf("garbage file: %v", err)
	}
	// A sparse file over the cap is refused from its size, without reading it.
	big := filepath.Join(dir, "big.safetensors")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxSafetensorsBytes + 1); err != nil {
		t.Skip("cannot make a sparse file:", err)
	}
	f.Close()
	_, err = ReadSafetensors(big)
	var se *nn.SizeError
	if !errors.As(err, &se) || !errors.Is(err, nn.ErrTooLarge) || se.File != big {
		t.Errorf("oversized file: %v", err)
	}
}

// stSeeds are valid and broken files for the fuzzer to start from.
func stSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	var buf bytes.Buffer
	err := WriteSafetensors(&buf, []string{"w", "s", "e"}, map[string]*tensor.Dense{
		"w": f32Tensor([]int{2, 2}, 1, 2, 3, 4),
		"s": tensor.New(tensor.FromScalar(float32(1))),
		"e": f32Tensor([]int{0}),
	}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, bytes.Clone(buf.Bytes()))
	seeds = append(seeds,
		stFile(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}}`, le16(0x7c00, 0x0001, 0x3f80)),
		stFile(`{"n":{"dtype":"I64","shape":[],"data_offsets":[0,8]},"__metadata__":{"x":"y"}}`, make([]byte, 8)),
		stFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}),
		stFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)),
		stFile(`{"a":{"dtype":"BOOL","shape":[3,0],"data_offsets":[0,0]}}`, nil),
		stFile(`{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8)),
		stFile(`{`, nil),
		[]byte{},
	)
	return seeds
}

// FuzzDecodeSafetensors checks that no input panics the decoder and that
// whatever decodes survives an F32 re-encode unchanged.
func FuzzDecodeSafetensors(f *testing.F) {
	for _, s := range stSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := DecodeSafetensors("fuzz", data)
		if err != nil {
			var fe *nn.FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError: %v", err, err)
			}
			return
		}
		var buf bytes.Buffer
		if err := WriteSafetensors(&buf, st.Names, st.Tensors, st.Metadata); err != nil {
			t.Fatalf("re-encoding a decoded file: %v", err)
		}
		st2, err := DecodeSafetensors("fuzz-again", buf.Bytes())
		if err != nil {
			t.Fatalf("decoding a re-encoded file: %v", err)
		}
		if strings.Join(st.Names, "\x00") != strings.Join(st2.Names, "\x00") {
			t.Fatalf("names %q became %q", st.Names, st2.Names)
		}
		if len(st.Metadata) != len(st2.Metadata) {
			t.Fatalf("metadata %q became %q", st.Metadata, st2.Metadata)
		}
		for k, v := range st.Metadata {
			if st2.Metadata[k] != v {
				t.Fatalf("metadata %q became %q", st.Metadata, st2.Metadata)
			}
		}
		for _, n := range st.Names {
			a, b := st.Tensors[n], st2.Tensors[n]
			if len(a.Shape()) != len(b.Shape()) || !a.Shape().Eq(b.Shape()) {
				t.Fatalf("%q: shape %v became %v", n, a.Shape(), b.Shape())
			}
			if !sameBits(a.Float32s(), b.Float32s()) {
				t.Fatalf("%q: values changed", n)
			}
			if st2.DTypes[n] != "F32" {
				t.Fatalf("%q: re-encoded dtype %s", n, st2.DTypes[n])
			}
		}
	})
}
