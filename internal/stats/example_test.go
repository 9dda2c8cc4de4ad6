package stats_test

import (
	"fmt"

	"github.com/varpar/varpar/internal/stats"
)

func ExamplePercentiles() {
	latencyMS := []float64{12, 3, 7, 5, 9, 4, 30, 6, 8, 10}
	p := stats.Percentiles(latencyMS, 0.5, 0.9, 0.99)
	fmt.Println("p50", p[0], "p90", p[1], "p99", p[2])
	// Output: p50 7 p90 12 p99 30
}
