package format

// Safetensors decoding and encoding.
//
// The format (https://github.com/huggingface/safetensors) is an 8-byte
// little-endian header length N, N bytes of JSON describing every tensor,
// then one byte buffer holding all tensor data. The engine keeps every weight
// as float32, so the decoder converts every supported dtype on the way in;
// the encoder only writes F32.
//
// The decoder trusts nothing in the file: a weights file may come from a
// download, a user or a half-finished copy, and a bad one must produce an
// error naming the file and the tensor, never a panic or a huge allocation.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/varpar/varpar/nn"
	"gorgonia.org/tensor"
)

// MaxSafetensorsBytes is the largest weights file ReadSafetensors (and
// LoadVariant) will read: 1 GiB. MobileNetV2 at width 1.4 is about 25 MB of
// F32, so the cap is far above any real model; it exists so that a wrong path
// (a disk image, a video) fails fast instead of exhausting memory.
const MaxSafetensorsBytes = 1 << 30

// MaxSafetensorsHeader is the largest JSON header accepted, 100 MB, the same
// limit as the reference implementation. A MobileNetV2 header is ~30 KB.
const MaxSafetensorsHeader = 100_000_000

// maxTensorRank bounds the number of dimensions of one tensor. No real
// tensor comes close (NumPy allows 64); it keeps a hostile header from
// making us build huge shape and stride slices.
const maxTensorRank = 64

// stMetadataKey is the reserved header key holding string metadata.
const stMetadataKey = "__metadata__"

// Safetensors is a decoded safetensors file, every tensor converted to float32.
type Safetensors struct {
	// Names lists the tensors in data-offset order (ties between empty
	// tensors sharing an offset broken by name), which is the order the
	// writer laid them out, so decode→write→decode keeps it.
	Names []string
	// Tensors holds each tensor as a float32 *tensor.Dense with the shape
	// stored in the file. A scalar (shape [] in the file, as PyTorch's
	// num_batches_tracked) has shape () — Dims()==0, one element; read it
	// with Float32s()[0], not Data(), which returns a bare float32 for
	// scalars. Empty tensors (a zero dimension) are kept with their shape.
	Tensors map[string]*tensor.Dense
	// DTypes is each tensor's dtype as stored: "F32", "F16", "BF16", "F64",
	// "I64", ... so callers can refuse, say, integer weights.
	DTypes map[string]string
	// Metadata is the "__metadata__" object (empty, never nil, if absent).
	Metadata map[string]string
}

// stDType describes one safetensors dtype: its size in bytes and how to turn
// its little-endian bytes into float32.
type stDType struct {
	size int
	conv func(dst []float32, src []byte)
}

// stDTypes are the dtypes the decoder understands. Integer types convert to
// the nearest float32 (exact up to 2^24); BOOL converts to 0 or 1 (any
// non-zero byte is true). Float types keep NaN, ±Inf and subnormals.
var stDTypes = map[string]stDType{
	"F64":     {8, convF64},
	"F32":     {4, convF32},
	"F16":     {2, convF16},
	"BF16":    {2, convBF16},
	"F8_E5M2": {1, convF8E5M2},
	"F8_E4M3": {1, convF8E4M3},
	"I64":     {8, convI64},
	"I32":     {4, convI32},
	"I16":     {2, convI16},
	"I8":      {1, convI8},
	"U64":     {8, convU64},
	"U32":     {4, convU32},
	"U16":     {2, convU16},
	"U8":      {1, convU8},
	"BOOL":    {1, convBool},
}

// stEntry is one tensor's header entry after validation.
type stEntry struct {
	name       string
	dtype      string
	shape      []int
	elems      int
	begin, end int
}

// stFormatErr builds a *FormatError for file name; tensor, if not empty, is
// named in the message.
func stFormatErr(name, tensorName, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if tensorName != "" {
		msg = fmt.Sprintf("safetensors: tensor %q: %s", tensorName, msg)
	} else {
		msg = "safetensors: " + msg
	}
	return &nn.FormatError{File: name, Msg: msg}
}

// DecodeSafetensors decodes a whole safetensors file held in data; name is
// only used in error messages. Every failure is a *FormatError naming the
// file and, where one is involved, the tensor.
//
// Validation, in order: the 8-byte length is present; the header length is
// at most MaxSafetensorsHeader and within the file; the header is one JSON
// object (trailing whitespace allowed, as writers pad with spaces) with no
// duplicate keys; "__metadata__", if present, maps strings to strings; each
// tensor entry has exactly dtype, shape and data_offsets; the dtype is known;
// the shape has at most 64 non-negative integer dimensions whose product
// times the dtype size fits in an int; data_offsets are two integers
// begin <= end within the data buffer holding exactly elements×size bytes.
//
// Hole policy: the tensors, sorted by offset, must tile the data buffer
// exactly — the first starts at 0, each starts where the previous ended, the
// last ends at the end of the file. This is what the reference
// implementation enforces too; it rejects overlapping tensors (which would
// alias) and unreferenced bytes (a sign of truncation or a hand-edited
// header), so a file that decodes here also loads in PyTorch.
//
// The returned tensors do not alias data.
func DecodeSafetensors(name string, data []byte) (*Safetensors, error) {
	if len(data) < 8 {
		return nil, stFormatErr(name, "", "file is %d bytes, too short for the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > MaxSafetensorsHeader {
		return nil, stFormatErr(name, "", "header length %d is more than the %d-byte limit", n, MaxSafetensorsHeader)
	}
	if n > uint64(len(data)-8) {
		return nil, stFormatErr(name, "", "header length %d runs past the end of the file (%d bytes follow the length)", n, len(data)-8)
	}
	header := data[8 : 8+int(n)]
	buf := data[8+int(n):]

	fields, err := jsonObjectEntries(header)
	if err != nil {
		if len(bytes.TrimSpace(header)) == 0 {
			return nil, stFormatErr(name, "", "header is empty")
		}
		return nil, stFormatErr(name, "", "header: %v", err)
	}

	st := &Safetensors{
		Tensors:  make(map[string]*tensor.Dense, len(fields)),
		DTypes:   make(map[string]string, len(fields)),
		Metadata: map[string]string{},
	}
	entries := make([]stEntry, 0, len(fields))
	for _, f := range fields {
		if f.key == stMetadataKey {
			md, err := decodeStringMap(f.raw)
			if err != nil {
				return nil, stFormatErr(name, "", "__metadata__: %v", err)
			}
			st.Metadata = md
			continue
		}
		e, err := decodeStEntry(f.key, f.raw, len(buf))
		if err != nil {
			return nil, stFormatErr(name, f.key, "%v", err)
		}
		entries = append(entries, e)
	}

	sort.Slice(entries, func(i, j int) bool {
		a, b := &entries[i], &entries[j]
		if a.begin != b.begin {
			return a.begin < b.begin
		}
		if a.end != b.end {
			return a.end < b.end
		}
		return a.name < b.name
	})
	pos := 0
	for i := range entries {
		e := &entries[i]
		switch {
		case e.begin < pos:
			return nil, stFormatErr(name, e.name, "data_offsets [%d, %d] overlap tensor %q, which ends at %d",
				e.begin, e.end, entries[i-1].name, pos)
		case e.begin > pos:
			return nil, stFormatErr(name, e.name, "data_offsets [%d, %d] leave a hole: bytes [%d, %d) of the data buffer belong to no tensor",
				e.begin, e.end, pos, e.begin)
		}
		pos = e.end
	}
	if pos != len(buf) {
		return nil, stFormatErr(name, "", "data buffer is %d bytes but the tensors cover only [0, %d): %d trailing bytes belong to no tensor",
			len(buf), pos, len(buf)-pos)
	}

	st.Names = make([]string, len(entries))
	for i := range entries {
		e := &entries[i]
		vals := make([]float32, e.elems)
		stDTypes[e.dtype].conv(vals, buf[e.begin:e.end])
		st.Names[i] = e.name
		st.Tensors[e.name] = tensor.New(tensor.WithShape(e.shape...), tensor.WithBacking(vals))
		st.DTypes[e.name] = e.dtype
	}
	return st, nil
}

// decodeStEntry validates one tensor entry. bufLen is the size of the data
// buffer, which offsets must stay within.
func decodeStEntry(tensorName string, raw []byte, bufLen int) (stEntry, error) {
	e := stEntry{name: tensorName}
	fields, err := jsonObjectEntries(raw)
	if err != nil {
		return e, fmt.Errorf("entry: %v", err)
	}
	var dtypeRaw, shapeRaw, offRaw []byte
	for _, f := range fields {
		switch f.key {
		case "dtype":
			dtypeRaw = f.raw
		case "shape":
			shapeRaw = f.raw
		case "data_offsets":
			offRaw = f.raw
		default:
			return e, fmt.Errorf("unknown field %q (want dtype, shape, data_offsets)", truncForMsg(f.key))
		}
	}
	switch {
	case dtypeRaw == nil:
		return e, errors.New("no dtype")
	case shapeRaw == nil:
		return e, errors.New("no shape")
	case offRaw == nil:
		return e, errors.New("no data_offsets")
	}

	if err := json.Unmarshal(dtypeRaw, &e.dtype); err != nil || dtypeRaw[0] != '"' {
		return e, fmt.Errorf("dtype %s is not a string", truncForMsg(string(dtypeRaw)))
	}
	dt, ok := stDTypes[e.dtype]
	if !ok {
		return e, fmt.Errorf("unknown dtype %q", truncForMsg(e.dtype))
	}

	dims, err := decodeUintArray(shapeRaw, "shape", maxTensorRank)
	if err != nil {
		return e, err
	}
	// Product of the non-zero dims times the element size must fit in an
	// int, so that shape and strides never overflow; a zero dim makes the
	// tensor empty but its other dims are still checked.
	e.shape = make([]int, len(dims))
	prod := uint64(dt.size)
	empty := false
	for i, d := range dims {
		if d == 0 {
			empty = true
			continue
		}
		if d > math.MaxInt || prod > math.MaxInt/d {
			return e, fmt.Errorf("shape %s has too many elements", fmtUints(dims))
		}
		prod *= d
		e.shape[i] = int(d)
	}
	nbytes := int(prod)
	if empty {
		nbytes = 0
	}
	e.elems = nbytes / dt.size

	offs, err := decodeUintArray(offRaw, "data_offsets", 2)
	if err != nil {
		return e, err
	}
	if len(offs) != 2 {
		return e, fmt.Errorf("data_offsets has %d numbers, want 2 (begin, end)", len(offs))
	}
	if offs[0] > offs[1] {
		return e, fmt.Errorf("data_offsets [%d, %d]: begin is after end", offs[0], offs[1])
	}
	if offs[1] > uint64(bufLen) {
		return e, fmt.Errorf("data_offsets [%d, %d] run past the end of the %d-byte data buffer (file truncated?)", offs[0], offs[1], bufLen)
	}
	e.begin, e.end = int(offs[0]), int(offs[1])
	if e.end-e.begin != nbytes {
		return e, fmt.Errorf("data_offsets [%d, %d] hold %d bytes, but %s shape %s needs %d",
			e.begin, e.end, e.end-e.begin, e.dtype, fmtUints(dims), nbytes)
	}
	return e, nil
}

// jsonField is one key and its undecoded value from a JSON object.
type jsonField struct {
	key string
	raw json.RawMessage
}

// jsonObjectEntries splits a JSON object into its fields, in file order,
// rejecting duplicate keys (encoding/json silently keeps the last one, which
// would let a header describe one tensor twice) and anything after the
// object but whitespace.
func jsonObjectEntries(data []byte) ([]jsonField, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("is %s, not a JSON object", jsonKind(tok))
	}
	var fields []jsonField
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not valid JSON: %v", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("not valid JSON: object key is %v", tok)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("not valid JSON: value of %q: %v", truncForMsg(key), err)
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", truncForMsg(key))
		}
		seen[key] = true
		fields = append(fields, jsonField{key, raw})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, fmt.Errorf("not valid JSON after the object: %v", err)
		}
		return nil, fmt.Errorf("unexpected %v after the JSON object", tok)
	}
	return fields, nil
}

// jsonKind names the JSON type of a first token, for error messages.
func jsonKind(tok any) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// decodeStringMap decodes a JSON object of string values (or null, as
// Python's json writes for metadata=None) with no duplicate keys.
func decodeStringMap(raw []byte) (map[string]string, error) {
	m := map[string]string{}
	if string(bytes.TrimSpace(raw)) == "null" {
		return m, nil
	}
	fields, err := jsonObjectEntries(raw)
	if err != nil {
		return nil, err
	}
	for _, f := range fields {
		var s string
		if f.raw[0] != '"' || json.Unmarshal(f.raw, &s) != nil {
			return nil, fmt.Errorf("value of %q is %s, not a string", truncForMsg(f.key), truncForMsg(string(f.raw)))
		}
		m[f.key] = s
	}
	return m, nil
}

// decodeUintArray decodes a JSON array of at most max non-negative integers
// (no fractions, no exponents, no strings), giving messages that say which
// element is wrong and how.
func decodeUintArray(raw []byte, what string, max int) ([]uint64, error) {
	if len(raw) == 0 || raw[0] != '[' {
		return nil, fmt.Errorf("%s is %s, not an array of integers", what, truncForMsg(string(raw)))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%s: %v", what, err)
	}
	var out []uint64
	for i := 0; dec.More(); i++ {
		if i >= max {
			return nil, fmt.Errorf("%s has more than %d elements", what, max)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s element %d is %s, not an integer", what, i, jsonKind(tok))
		}
		s := string(num)
		if s == "-0" {
			s = "0"
		} else if strings.HasPrefix(s, "-") {
			return nil, fmt.Errorf("%s element %d is %s, negative", what, i, truncForMsg(s))
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return nil, fmt.Errorf("%s element %d is %s, too large", what, i, truncForMsg(s))
			}
			return nil, fmt.Errorf("%s element %d is %s, not an integer", what, i, truncForMsg(s))
		}
		out = append(out, v)
	}
	return out, nil
}

// truncForMsg shortens s for an error message, so that a hostile header
// cannot make error strings megabytes long.
func truncForMsg(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func fmtUints(v []uint64) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(x, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// WriteSafetensors writes tensors as an F32 safetensors file, laid out in
// names order with no holes, so that DecodeSafetensors returns the same
// Names. Every name must be in tensors and every tensor in names (nothing is
// silently dropped); tensors must be float32. metadata may be nil; its keys
// are written sorted, so the output is deterministic. The header is padded
// with spaces to a multiple of 8 bytes so that the data buffer is aligned.
//
// Errors from w are returned wrapped; nothing is written if the arguments
// are invalid.
func WriteSafetensors(w io.Writer, names []string, tensors map[string]*tensor.Dense, metadata map[string]string) error {
	type item struct {
		name  string
		shape []int
		data  []float32
	}
	items := make([]item, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return fmt.Errorf("format: WriteSafetensors: name %q given twice", n)
		}
		seen[n] = true
		if n == stMetadataKey {
			return fmt.Errorf("format: WriteSafetensors: %q is reserved for metadata", n)
		}
		if !utf8.ValidString(n) {
			return fmt.Errorf("format: WriteSafetensors: name %q is not valid UTF-8", n)
		}
		t := tensors[n]
		if t == nil {
			return fmt.Errorf("format: WriteSafetensors: no tensor for name %q", n)
		}
		if t.Dtype() != tensor.Float32 {
			return fmt.Errorf("format: WriteSafetensors: tensor %q is %v, want float32", n, t.Dtype())
		}
		if t.IsMaterializable() { // a view: copy out its own elements
			m, ok := t.Materialize().(*tensor.Dense)
			if !ok {
				return fmt.Errorf("format: WriteSafetensors: tensor %q: cannot materialize view", n)
			}
			t = m
		}
		shape := slices.Clone([]int(t.Shape()))
		elems := 1
		for _, d := range shape {
			if d < 0 {
				return fmt.Errorf("format: WriteSafetensors: tensor %q has negative dimension in shape %v", n, shape)
			}
			elems *= d
		}
		data := t.Float32s()
		if len(data) != elems {
			return fmt.Errorf("format: WriteSafetensors: tensor %q has %d values for shape %v", n, len(data), shape)
		}
		items = append(items, item{n, shape, data})
	}
	for n := range tensors {
		if !seen[n] {
			return fmt.Errorf("format: WriteSafetensors: tensor %q is not in names", n)
		}
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("format: WriteSafetensors: metadata %q is not valid UTF-8", k)
		}
	}

	var h bytes.Buffer
	h.WriteByte('{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		h.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				h.WriteByte(',')
			}
			writeJSONString(&h, k)
			h.WriteByte(':')
			writeJSONString(&h, metadata[k])
		}
		h.WriteByte('}')
	}
	off := 0
	for i, it := range items {
		if i > 0 || len(metadata) > 0 {
			h.WriteByte(',')
		}
		writeJSONString(&h, it.name)
		h.WriteString(`:{"dtype":"F32","shape":[`)
		for j, d := range it.shape {
			if j > 0 {
				h.WriteByte(',')
			}
			h.WriteString(strconv.Itoa(d))
		}
		end := off + 4*len(it.data)
		fmt.Fprintf(&h, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	if h.Len() > MaxSafetensorsHeader {
		return fmt.Errorf("format: WriteSafetensors: header would be %d bytes, more than the %d readers accept", h.Len(), MaxSafetensorsHeader)
	}

	bw := bufio.NewWriterSize(w, 64<<10)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(h.Len()))
	bw.Write(lenBuf[:])
	bw.Write(h.Bytes())
	var chunk [4096]byte
	for _, it := range items {
		d := it.data
		for len(d) > 0 {
			n := min(len(d), len(chunk)/4)
			for i, v := range d[:n] {
				binary.LittleEndian.PutUint32(chunk[4*i:], math.Float32bits(v))
			}
			if _, err := bw.Write(chunk[:4*n]); err != nil {
				return fmt.Errorf("format: writing safetensors: %w", err)
			}
			d = d[n:]
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("format: writing safetensors: %w", err)
	}
	return nil
}

// writeJSONString writes s as a JSON string. json.Marshal of a string cannot
// fail; it escapes <, > and & too, which readers accept.
func writeJSONString(b *bytes.Buffer, s string) {
	q, _ := json.Marshal(s)
	b.Write(q)
}

// Dtype converters: src holds exactly len(dst) little-endian elements.

func convF32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func convF64(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

func convF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = f16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func convBF16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

// F8_E5M2 is the top byte of an IEEE half: same exponent, 2 mantissa bits.
func convF8E5M2(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = f16ToF32(uint16(src[i]) << 8)
	}
}

func convF8E4M3(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = f8e4m3ToF32(src[i])
	}
}

func convI64(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(int64(binary.LittleEndian.Uint64(src[8*i:])))
	}
}

func convI32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(int32(binary.LittleEndian.Uint32(src[4*i:])))
	}
}

func convI16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(int16(binary.LittleEndian.Uint16(src[2*i:])))
	}
}

func convI8(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(int8(src[i]))
	}
}

func convU64(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(binary.LittleEndian.Uint64(src[8*i:]))
	}
}

func convU32(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func convU16(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func convU8(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = float32(src[i])
	}
}

func convBool(dst []float32, src []byte) {
	for i := range dst {
		if src[i] != 0 {
			dst[i] = 1
		} else {
			dst[i] = 0
		}
	}
}

// f16ToF32 converts an IEEE 754 binary16 to float32 exactly (every half is
// representable as a float32): subnormals become normal floats, ±Inf stays
// infinite, and a NaN keeps its sign and payload (shifted into the top of
// the float32 mantissa, so a signalling NaN stays signalling).
func f16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0:
		// Zero or subnormal: mant × 2^-24, exact in float32.
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(math.Float32bits(v) | sign)
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// f8e4m3ToF32 converts an OCP FP8 E4M3 ("E4M3FN": bias 7, no infinities,
// S.1111.111 is NaN) value to float32.
func f8e4m3ToF32(b uint8) float32 {
	sign := uint32(b>>7) << 31
	exp := uint32(b>>3) & 0xf
	mant := uint32(b) & 0x7
	switch {
	case exp == 0xf && mant == 0x7:
		return math.Float32frombits(sign | 0x7fc00000)
	case exp == 0:
		v := float32(mant) * (1.0 / (1 << 9)) // mant × 2^-9
		return math.Float32frombits(math.Float32bits(v) | sign)
	}
	return math.Float32frombits(sign | (exp+127-7)<<23 | mant<<20)
}
