package kernels

// Work below this many multiply-accumulates runs on one goroutine: handing it
// to the pool costs more than it saves.
const ParallelMACs = 1 << 17

// SplitRows gives part i of n of rows [0, rows): [r0, r1), every part but the
// last a multiple of gemmRowAlign rows. Parts are disjoint, so workers that
// each write only their own rows of an output do not race.
func SplitRows(rows, i, n int) (int, int) {
	per := (rows + n - 1) / n
	per = (per + gemmRowAlign - 1) / gemmRowAlign * gemmRowAlign
	r0, r1 := per*i, per*(i+1)
	if r1 > rows {
		r1 = rows
	}
	if r0 > rows {
		r0 = rows
	}
	return r0, r1
}

// gemmRowAlign keeps each part's rows a multiple of the micro-kernels' row
// tiles so that only the last part has a remainder.
const gemmRowAlign = 16
