package local

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/varpar/varpar/peer/api"
)

func TestChooseVictim(t *testing.T) {
	cv := &api.ClusterView{
		Variants: []string{"v1", "v2", "v3", "v4"},
		Serving:  map[string][]string{"v1": {"a", "b"}, "v2": {"c"}, "v3": {"b"}, "v4": {"b"}},
	}
	name, sole := ChooseVictim(cv, []string{"c", "b", "a"})
	if name != "b" || !slices.Equal(sole, []string{"v3", "v4"}) {
		t.Errorf("got %s %v, want b, the only server of v3 and v4", name, sole)
	}
	// Among candidates only.
	if name, sole := ChooseVictim(cv, []string{"a", "c"}); name != "c" || !slices.Equal(sole, []string{"v2"}) {
		t.Errorf("a or c: got %s %v, want c [v2]", name, sole)
	}
	// Everything replicated: the first by name, nothing lost.
	cv.Serving = map[string][]string{"v1": {"a", "b"}, "v2": {"a", "b"}, "v3": {"a", "b"}, "v4": {"a", "b"}}
	if name, sole := ChooseVictim(cv, []string{"b", "a"}); name != "a" || len(sole) != 0 {
		t.Errorf("replicated: got %s %v, want a and none", name, sole)
	}
}

func TestPlanSettled(t *testing.T) {
	cv := &api.ClusterView{
		Assignment: map[string][]string{"v1": {"a"}, "v2": {"b"}, "v3": {"a"}},
		Members:    []api.MemberInfo{{Name: "a", Variants: []string{"v3", "v1"}}, {Name: "b", Variants: []string{"v2"}}},
	}
	if why := PlanSettled(cv); why != "" {
		t.Errorf("settled plan: %s", why)
	}
	if got := PlanByMember(cv); !slices.Equal(got["a"], []string{"v1", "v3"}) || !slices.Equal(got["b"], []string{"v2"}) {
		t.Errorf("plan by member: %v", got)
	}
	cv.Members[1].Variants = []string{"v2", "v3"} // b still hands v3 over
	if why := PlanSettled(cv); !strings.Contains(why, "b serves [v2 v3], the plan gives it [v2]") {
		t.Errorf("unsettled plan: %q", why)
	}
}

func TestFreePortsDiffer(t *testing.T) {
	c := &Cluster{ports: map[int]bool{}}
	seen := map[int]bool{}
	for range 30 {
		p, err := c.freePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || p == 0 {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
}

// TestNewBadBinary: a binary that cannot write the key is an error naming
// it, and leaves no temporary directory.
func TestNewBadBinary(t *testing.T) {
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "varpar-demo-*"))
	if _, err := New(filepath.Join(t.TempDir(), "no-varpar"), ""); err == nil || !strings.Contains(err.Error(), "no-varpar keygen") {
		t.Errorf("got %v", err)
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "varpar-demo-*"))
	if len(after) > len(before) {
		t.Errorf("left a directory behind: %v", after)
	}
}
