package gossip

import (
	"errors"
	"testing"
	"unicode/utf8"
)

func TestDecodeMessage(t *testing.T) {
	for _, tc := range []struct {
		buf  []byte
		kind byte
		name string
		bad  bool
	}{
		{encodeIntent("pi-kitchen"), msgLeaveIntent, "pi-kitchen", false},
		{nil, 0, "", true},
		{[]byte{msgLeaveIntent}, msgLeaveIntent, "", true},
		{append([]byte{msgLeaveIntent}, 0xff, 0xfe), msgLeaveIntent, "", true},
		{append([]byte{msgLeaveIntent}, make([]byte, maxNameLen+1)...), msgLeaveIntent, "", true},
		{[]byte{42, 'x'}, 42, "", false}, // a newer kind: ignored, not an error
	} {
		kind, name, err := decodeMessage(tc.buf)
		if kind != tc.kind || name != tc.name || (err != nil) != tc.bad {
			t.Errorf("decodeMessage(%q) = %d, %q, %v; want %d, %q, error %v", tc.buf, kind, name, err, tc.kind, tc.name, tc.bad)
		}
		if err != nil && !errors.Is(err, errBadMessage) {
			t.Errorf("decodeMessage(%q): error %v is not errBadMessage", tc.buf, err)
		}
	}
}

// FuzzDecodeMessage: whatever arrives, decoding does not panic, accepts only
// names a Config could hold, and gives back what encodeIntent put in.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(encodeIntent("n0"))
	f.Add(encodeIntent("pi-kitchen"))
	f.Add([]byte{})
	f.Add([]byte{msgLeaveIntent})
	f.Add([]byte{msgLeaveIntent, 0xff})
	f.Add([]byte{7, 1, 2, 3})
	f.Fuzz(func(t *testing.T, buf []byte) {
		kind, name, err := decodeMessage(buf)
		if err != nil || kind != msgLeaveIntent {
			return
		}
		if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
			t.Fatalf("accepted name %q", name)
		}
		if got := encodeIntent(name); string(got) != string(buf) {
			t.Fatalf("re-encoding %q gives %q", buf, got)
		}
	})
}
