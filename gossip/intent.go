package gossip

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// memberlist tells its event delegate that a node is gone, but not whether it
// left or failed. So, as serf does, a leaving node first gossips a leave
// intent of its own (a user message, encrypted like the rest), and the others
// label the departure that follows "left" when they have heard the intent.
// Gossip keeps no order, so an intent that arrives just after the departure
// still relabels it (view.intent). A lost intent makes a leave look like a
// failure: nothing worse.

// Message kinds, the first byte of every user message this package sends.
const (
	msgLeaveIntent byte = 1
)

// maxNameLen caps Config.Name, so that an intent always fits a gossip packet.
const maxNameLen = 128

var errBadMessage = errors.New("gossip: malformed message")

func encodeIntent(name string) []byte {
	return append([]byte{msgLeaveIntent}, name...)
}

// decodeMessage parses a user message. Unknown kinds are not an error: they
// come from a newer version of this package and are ignored.
func decodeMessage(buf []byte) (kind byte, name string, err error) {
	if len(buf) == 0 {
		return 0, "", fmt.Errorf("%w: empty", errBadMessage)
	}
	kind, body := buf[0], buf[1:]
	if kind != msgLeaveIntent {
		return kind, "", nil
	}
	if len(body) == 0 || len(body) > maxNameLen || !utf8.Valid(body) {
		return kind, "", fmt.Errorf("%w: leave intent with a %d-byte name", errBadMessage, len(body))
	}
	return kind, string(body), nil
}

// intentBroadcast is a leave intent in memberlist's transmit queue.
type intentBroadcast struct {
	name string
	msg  []byte
	done chan struct{} // gets a value once the queue is done with it
}

func newIntentBroadcast(name string) *intentBroadcast {
	return &intentBroadcast{name: name, msg: encodeIntent(name), done: make(chan struct{}, 1)}
}

func (b *intentBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*intentBroadcast)
	return ok && o.name == b.name
}

func (b *intentBroadcast) Message() []byte { return b.msg }

func (b *intentBroadcast) Finished() {
	select {
	case b.done <- struct{}{}:
	default:
	}
}
