// Package layout holds no code: its test checks the rules of varpar's package
// structure (which way imports go, package size, package docs) against the
// module as `go list` sees it, so that the structure the README's Architecture
// section draws cannot drift from the code without a failing test.
package layout
