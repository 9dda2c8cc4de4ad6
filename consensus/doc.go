// Package consensus is varpar's decision logic, kept free of I/O, goroutines
// and clocks so that it is tested as plain functions: fusing the variants'
// top-k answers into one class vector (the one fusion rule that serving,
// evaluation and training share).
package consensus
