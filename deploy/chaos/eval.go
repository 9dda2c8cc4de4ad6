package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
)

// evalSubsets runs varpar eval on the run's family and images (one thread)
// and returns its mean fused accuracy over every subset of each size: the
// curve the accuracy by variants answered is set next to.
func evalSubsets(varpar, family, images string) (map[int]float64, error) {
	args := []string{"eval", "--data", images, "--json", "--threads", "1"}
	if family != "" {
		args = append(args, "--family", family)
	}
	out, err := exec.Command(varpar, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("varpar eval: %w", err)
	}
	return parseEval(out)
}

// parseEval reads the subset curve from varpar eval --json.
func parseEval(out []byte) (map[int]float64, error) {
	var r struct {
		Subsets []struct {
			Size int     `json:"size"`
			Mean float64 `json:"mean"`
		} `json:"subsets"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("varpar eval --json: %w", err)
	}
	if len(r.Subsets) == 0 {
		return nil, fmt.Errorf("varpar eval --json: no subsets")
	}
	m := map[int]float64{}
	for _, s := range r.Subsets {
		m[s.Size] = s.Mean
	}
	return m, nil
}

// curveText sets the run's accuracy by variants answered next to eval's
// curve: "1: 85.2% (eval 85.96%, n=40); 4: ...".
func curveText(by map[int]Accuracy, eval map[int]float64) string {
	s := ""
	for n := 0; n <= 64; n++ {
		a, ok := by[n]
		if !ok {
			continue
		}
		if s != "" {
			s += "; "
		}
		s += strconv.Itoa(n) + ": " + fmt.Sprintf("%.1f%%", 100*a.Accuracy)
		if e, ok := eval[n]; ok {
			s += fmt.Sprintf(" (eval %.1f%%)", 100*e)
		}
		s += fmt.Sprintf(" n=%d", a.N)
	}
	return s
}
