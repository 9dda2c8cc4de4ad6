package format

import "fmt"

// ChecksumError reports a weights file whose SHA-256 differs from the manifest's.
type ChecksumError struct {
	File  string
	Found string
	Want  string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: sha256 is %s, manifest wants %s", e.File, e.Found, e.Want)
}
