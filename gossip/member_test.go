package gossip

import (
	"fmt"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func newFakeClock() *fakeClock      { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.t = c.t.Add(d)
}

func mem(name, meta string) Member {
	return Member{Name: name, Addr: "10.0.0.1", Port: 7946, Meta: []byte(meta)}
}

// summary lists members as name:state.
func summary(ms []Member) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name + ":" + string(m.State)
	}
	return fmt.Sprint(out)
}

// Departures are labelled left when a leave intent came shortly before or
// after them, dead otherwise; departed members are kept for the retention.
func TestViewDepartures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps func(v *view, c *fakeClock)
		want  string
	}{
		{"failure", func(v *view, c *fakeClock) {
			v.depart("b")
		}, "[a:alive b:dead self:alive]"},
		{"intent, then departure", func(v *view, c *fakeClock) {
			v.intent("b")
			c.add(time.Second)
			v.depart("b")
		}, "[a:alive b:left self:alive]"},
		{"departure overtakes the intent", func(v *view, c *fakeClock) {
			v.depart("b")
			c.add(time.Second)
			if !v.intent("b") {
				panic("no relabel")
			}
		}, "[a:alive b:left self:alive]"},
		{"stale intent", func(v *view, c *fakeClock) {
			v.intent("b")
			c.add(intentTTL + time.Second)
			v.depart("b")
		}, "[a:alive b:dead self:alive]"},
		{"intent long after a failure", func(v *view, c *fakeClock) {
			v.depart("b")
			c.add(intentTTL + time.Second)
			v.intent("b")
		}, "[a:alive b:dead self:alive]"},
		{"intent forgotten on rejoin", func(v *view, c *fakeClock) {
			v.intent("b")
			v.join(mem("b", "again"))
			v.depart("b")
		}, "[a:alive b:dead self:alive]"},
		{"intent of an unknown node", func(v *view, c *fakeClock) {
			v.intent("zed")
			v.join(mem("zed", ""))
			v.depart("zed")
		}, "[a:alive b:alive self:alive zed:dead]"},
		{"own departure after Leave", func(v *view, c *fakeClock) {
			v.setLeaving()
			v.depart("self")
		}, "[a:alive b:alive self:left]"},
		{"departed members forgotten after the retention", func(v *view, c *fakeClock) {
			v.depart("a")
			c.add(30 * time.Second)
			v.depart("b")
			c.add(31 * time.Second)
		}, "[b:dead self:alive]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			v := newView("self", time.Minute, c.now)
			for _, n := range []string{"self", "a", "b"} {
				v.join(mem(n, n))
			}
			tc.steps(v, c)
			if got := summary(v.all()); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestViewMembers(t *testing.T) {
	c := newFakeClock()
	v := newView("self", time.Minute, c.now)
	for _, n := range []string{"self", "c", "a", "b"} {
		v.join(mem(n, n))
	}
	v.update(mem("a", "a2"))
	v.depart("c")
	if got, want := summary(v.alive()), "[a:alive b:alive self:alive]"; got != want {
		t.Errorf("alive = %s, want %s", got, want)
	}
	if a, _ := v.lookup("a"); string(a.Meta) != "a2" {
		t.Errorf("a's meta = %q after update, want a2", a.Meta)
	}
	if got := v.others(); got != 2 {
		t.Errorf("others = %d, want 2", got)
	}
	if got := v.size(); got != 3 {
		t.Errorf("size = %d, want 3", got)
	}
	// memberlist sends updates for live members only; one about a member
	// this view does not know records it alive.
	v.update(mem("d", "d"))
	if d, ok := v.lookup("d"); !ok || d.State != StateAlive {
		t.Errorf("update of an unknown member: %+v", d)
	}
}
