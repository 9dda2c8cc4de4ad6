package nn

import "github.com/varpar/varpar/nn/internal/kernels"

// ISA reports the instruction set the kernels run on: "avx512", "avx2" or
// "generic". The VARPAR_ISA environment variable picks a lower level than the
// CPU's best (for comparisons); the purego build tag forces "generic".
func ISA() string { return kernels.Active().String() }
