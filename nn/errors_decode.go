package nn

import (
	"errors"
	"fmt"
)

// ErrTooLarge is returned (wrapped in a *SizeError) when an input is larger
// than a decoder is willing to read. It is separate from ErrPixelBudget so
// that a server can tell "file too big to read" from "image too big to decode".
var ErrTooLarge = errors.New("nn: input exceeds size limit")

// SizeError reports an input (a file, a header, an image stream) whose size
// is over a documented limit. It unwraps to ErrTooLarge.
type SizeError struct {
	File  string // path or name of the input, as the caller gave it ("" if none)
	What  string // what is too large: "file", "header", "image data", ...
	Size  int64  // the size found, or the limit+1 when reading stopped at the limit
	Limit int64  // the limit in bytes
}

func (e *SizeError) Error() string {
	prefix := "nn: "
	if e.File != "" {
		prefix = e.File + ": "
	}
	return fmt.Sprintf("%s%s is %d bytes, more than the %d-byte limit", prefix, e.What, e.Size, e.Limit)
}

// Unwrap lets errors.Is(err, ErrTooLarge) match.
func (e *SizeError) Unwrap() error { return ErrTooLarge }

// PixelBudgetError reports an image whose header declares more pixels than
// the caller's budget. It is returned before any pixel is decoded, so that a
// small hostile file cannot make the decoder allocate width*height buffers.
// It unwraps to ErrPixelBudget.
type PixelBudgetError struct {
	File          string // path or name of the input ("" if none)
	Format        string // "jpeg" or "png"
	Width, Height int
	Budget        int64 // maximum width*height allowed
}

func (e *PixelBudgetError) Error() string {
	prefix := "nn: "
	if e.File != "" {
		prefix = e.File + ": "
	}
	return fmt.Sprintf("%s%s image is %dx%d = %d pixels, more than the budget of %d pixels",
		prefix, e.Format, e.Width, e.Height, int64(e.Width)*int64(e.Height), e.Budget)
}

// Unwrap lets errors.Is(err, ErrPixelBudget) match.
func (e *PixelBudgetError) Unwrap() error { return ErrPixelBudget }
