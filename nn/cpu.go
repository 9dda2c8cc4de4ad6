package nn

import (
	"fmt"
	"os"
)

// isa names an instruction-set level the kernels have code for.
type isa int

const (
	isaGeneric isa = iota // pure Go: every architecture
	isaAVX2               // amd64 with AVX2 and FMA
	isaAVX512             // amd64 with AVX-512 F/BW/DQ/VL
)

func (i isa) String() string {
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
// variable names, if the CPU has it. Tests switch it with forceISA.
var activeISA = chooseISA(os.Getenv("VARPAR_ISA"))

func chooseISA(env string) isa {
	best := detectISA()
	if env == "" {
		return best
	}
	for _, i := range availableISAs() {
		if i.String() == env {
			return i
		}
	}
	fmt.Fprintf(os.Stderr, "varpar: VARPAR_ISA=%q is not available on this CPU (have %v); using %v\n", env, availableISAs(), best)
	return best
}

// ISA reports the instruction set the kernels run on: "avx512", "avx2" or "generic".
func ISA() string { return activeISA.String() }

// availableISAs lists every level this CPU and build can run, generic first.
func availableISAs() []isa {
	out := []isa{isaGeneric}
	for i := isaGeneric + 1; i <= detectISA(); i++ {
		out = append(out, i)
	}
	return out
}

// forceISA switches the kernels to level i until restore is called. For tests
// and benchmarks only: it is not safe while kernels run.
func forceISA(i isa) (restore func()) {
	old := activeISA
	activeISA = i
	return func() { activeISA = old }
}
