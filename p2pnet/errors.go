package p2pnet

import (
	"errors"
	"fmt"

	"github.com/varpar/varpar/p2pnet/pb"
)

// Errors that calls in this package wrap; test for them with errors.Is.
var (
	// ErrClosed: the Host was closed.
	ErrClosed = errors.New("p2pnet: host closed")
	// ErrBadMessage: a message did not decode or failed validation
	// (errors.Is(err, pb.ErrInvalid) then tells which rule it broke).
	ErrBadMessage = errors.New("p2pnet: bad message")
	// ErrTooLarge: a message or a weights file is over its size cap.
	ErrTooLarge = errors.New("p2pnet: too large")
	// ErrHashMismatch: the fetched weights do not hash to the requested
	// SHA-256. Whatever was written must not be used.
	ErrHashMismatch = errors.New("p2pnet: weights hash mismatch")
	// ErrShortData: the weights stream ended before the file did, or sent
	// chunks out of order. Whatever was written must not be used.
	ErrShortData = errors.New("p2pnet: weights stream ended early")
	// ErrNoHandler: this host has no handler or source for the request.
	ErrNoHandler = errors.New("p2pnet: no handler")
	// ErrKeyFile: the identity key file exists but cannot be used.
	ErrKeyFile = errors.New("p2pnet: unusable identity key file")
)

// RemoteError is a refusal that the remote peer sent on purpose, as opposed
// to a failure of the transport. FetchWeights returns it for an error chunk
// (NOT_FOUND when the peer does not hold the file). Infer does not: an answer
// whose Error is not OK is returned as an answer.
type RemoteError struct {
	Code    pb.ErrorCode
	Message string
}

func (e *RemoteError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("p2pnet: remote peer answered %s", e.Code)
	}
	return fmt.Sprintf("p2pnet: remote peer answered %s: %s", e.Code, e.Message)
}
