package gossip

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalidConfig is wrapped by New for a Config it cannot run with.
	ErrInvalidConfig = errors.New("gossip: invalid config")
	// ErrNotStarted is returned by calls that need Start first.
	ErrNotStarted = errors.New("gossip: not started")
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("gossip: already started")
	// ErrShutdown is returned by calls made after Shutdown.
	ErrShutdown = errors.New("gossip: shut down")
	// ErrLeft is returned by UpdateMeta after Leave: a node that left cannot
	// come back without a new Gossip (memberlist cannot rejoin after Leave).
	ErrLeft = errors.New("gossip: left the cluster")
	// ErrMetaTooLarge is wrapped when Config.Meta returns more than
	// MetaMaxSize bytes.
	ErrMetaTooLarge = errors.New("gossip: metadata too large")

	// ErrNameConflict is matched (errors.Is) by a *NameConflictError.
	ErrNameConflict = errors.New("gossip: node name conflict")
	// ErrMemberRefused is matched (errors.Is) by a *RefusedError.
	ErrMemberRefused = errors.New("gossip: member refused")
	// ErrKeyMismatch is wrapped by a join error when a seed answered but the
	// two sides could not decrypt each other: the cluster keys differ (or the
	// seed runs without encryption).
	ErrKeyMismatch = errors.New("gossip: cluster key mismatch")
	// ErrJoinFailed is wrapped by WaitJoined once Config.JoinRetries join
	// attempts have failed and the node stopped trying.
	ErrJoinFailed = errors.New("gossip: join failed")
)

// NameConflictError says that two nodes at different addresses claim one
// name: typically two devices cloned from one image. It is returned (wrapped)
// by WaitJoined on the newcomer, and logged on both sides.
type NameConflictError struct {
	Name string
	// Self is set when Name is this node's own name. Ours is then this node's
	// address and Theirs the other claimant's.
	Self   bool
	Ours   string // host:port as this node knows it
	Theirs string // host:port of the other claimant
	// TheirState is the other claimant's state as the remote side reported
	// it. A dead claimant is a device that moved and will be forgotten after
	// Config.DeadRetention, so the conflict is retried; a live one is not.
	TheirState State
}

// The text reads right on both sides of the join: on the newcomer (whose
// join fails) and on the seed (which refuses it).
func (e *NameConflictError) Error() string {
	if e.Self {
		return fmt.Sprintf("gossip: node name %q is claimed by this node (%s) and by %s (%s): give every device its own name",
			e.Name, e.Ours, e.Theirs, e.TheirState)
	}
	return fmt.Sprintf("gossip: node name %q is at %s here and at %s (%s) on the other side of a join: give every device its own name",
		e.Name, e.Ours, e.Theirs, e.TheirState)
}

// Is makes errors.Is(err, ErrNameConflict) true.
func (e *NameConflictError) Is(target error) bool { return target == ErrNameConflict }

// permanent reports whether retrying cannot help: another live device holds
// this node's name, and only an operator can fix that.
func (e *NameConflictError) permanent() bool { return e.Self && e.TheirState == StateAlive }

// RefusedError says that Config.AcceptMember refused a member during a join.
type RefusedError struct {
	Member Member
	Err    error // what AcceptMember returned
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("gossip: member %q at %s refused: %v", e.Member.Name, e.Member.Address(), e.Err)
}

// Is makes errors.Is(err, ErrMemberRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrMemberRefused }

// Unwrap returns AcceptMember's error.
func (e *RefusedError) Unwrap() error { return e.Err }

// joinErrors gathers the per-seed failures of one join attempt on one line,
// where errors.Join would spread them over several.
type joinErrors []error

func (e joinErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (e joinErrors) Unwrap() []error { return e }
