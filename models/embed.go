// Package models holds the trained variant families that ship with varpar
// (see each family's README.md for how it was trained and how well it does).
// The default family is built into the binary, so that a new device needs
// only the binary, the cluster key and one seed address.
package models

import "embed"

// Default names the family a peer serves when its configuration names none.
const Default = "mnist"

// FS holds the default family: its manifest and its variants' weights (the
// base model, which serving never uses, stays out of the binary).
//
//go:embed mnist/family.json mnist/w*.safetensors
var FS embed.FS
