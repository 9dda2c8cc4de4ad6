package netns

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPickPrefix(t *testing.T) {
	p, err := PickPrefix("1: lo    inet 127.0.0.1/8\n", []byte{0, 5})
	if err != nil || p.String() != "198.18.5.0/24" {
		t.Errorf("got %v %v, want 198.18.5.0/24", p, err)
	}
	// In use: the next one.
	p, err = PickPrefix("9: vpcbr    inet 198.18.5.254/24\n", []byte{0, 5})
	if err != nil || p.String() != "198.18.6.0/24" {
		t.Errorf("got %v %v, want 198.18.6.0/24", p, err)
	}
	if p, _ := PickPrefix("", []byte{1, 2}); p.String() != "198.19.2.0/24" {
		t.Errorf("got %v, want 198.19.2.0/24", p)
	}
	// Every /24 in use: an error, not a prefix outside the range.
	var all strings.Builder
	for n := range 512 {
		all.WriteString(" " + netip.AddrFrom4([4]byte{198, 18 + byte(n/256), byte(n % 256), 1}).String() + "/24\n")
	}
	if p, err := PickPrefix(all.String(), []byte{0, 0}); err == nil {
		t.Errorf("every /24 in use: got %v, want an error", p)
	}
}

func FuzzPickPrefix(f *testing.F) {
	f.Add([]byte("2: eth0 inet 198.18.1.254/24"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		if p, err := PickPrefix(string(b), b); err == nil && !netip.MustParsePrefix("198.18.0.0/15").Contains(p.Addr()) {
			t.Fatalf("%v outside 198.18.0.0/15", p)
		}
	})
}

func TestHostAddress(t *testing.T) {
	b := &Bridge{Prefix: netip.MustParsePrefix("198.18.7.0/24")}
	if got := b.Host(3).String(); got != "198.18.7.3" {
		t.Errorf("Host(3) = %s", got)
	}
	if got := b254(b.Prefix).String(); got != "198.18.7.254" {
		t.Errorf(".254 = %s", got)
	}
}
