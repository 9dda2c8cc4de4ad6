package kernels

import (
	"fmt"
	"os"
)

// ISA names an instruction-set level the kernels have code for.
type ISA int

const (
	isaGeneric ISA = iota // pure Go: every architecture
	isaAVX2               // amd64 with AVX2 and FMA
	isaAVX512             // amd64 with AVX-512 F/BW/DQ/VL
)

// String names the level as VARPAR_ISA spells it: "avx512", "avx2" or "generic".
func (i ISA) String() string {
	switch i {
	case isaAVX2:
		return "avx2"
	case isaAVX512:
		return "avx512"
	default:
		return "generic"
	}
}

// activeISA is the level the kernels dispatch on. It is chosen once at start-up:
// the best the CPU has (see detectISA), or the one the VARPAR_ISA environment
// variable names, if the CPU has it. Tests switch it with Force.
var activeISA = chooseISA(os.Getenv("VARPAR_ISA"))

func chooseISA(env string) ISA {
	best := detectISA()
	if env == "" {
		return best
	}
	for _, i := range Available() {
		if i.String() == env {
			return i
		}
	}
	fmt.Fprintf(os.Stderr, "varpar: VARPAR_ISA=%q is not available on this CPU (have %v); using %v\n", env, Available(), best)
	return best
}

// Active reports the instruction set the kernels run on.
func Active() ISA { return activeISA }

// Available lists every level this CPU and build can run, generic first.
func Available() []ISA {
	out := []ISA{isaGeneric}
	for i := isaGeneric + 1; i <= detectISA(); i++ {
		out = append(out, i)
	}
	return out
}

// Force switches the kernels to level i until restore is called. For tests
// and benchmarks only: it is not safe while kernels run.
func Force(i ISA) (restore func()) {
	old := activeISA
	activeISA = i
	return func() { activeISA = old }
}
