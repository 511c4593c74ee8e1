// Package timing holds the wall-time samples of the benchmarks in bench/:
// variants of a comparison run alternately, then are summarised by
// quantiles. It is a helper of benchmark code only.
package timing

import (
	"fmt"
	"slices"
	"time"
)

// Samples are the wall times of one variant.
type Samples []time.Duration

// Quantile returns the q-quantile (0 <= q <= 1) by nearest rank, or 0 for
// no samples.
func (s Samples) Quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return c[int(q*float64(len(c)-1)+0.5)]
}

// Median is the 0.5-quantile.
func (s Samples) Median() time.Duration { return s.Quantile(0.5) }

// Alternate runs each variant n times, once per round, rotating the order
// every round so that no variant always runs first (cold) or last.
func Alternate(n int, variants []string, run func(variant string) time.Duration) map[string]Samples {
	out := make(map[string]Samples, len(variants))
	for r := 0; r < n; r++ {
		for i := range variants {
			v := variants[(r+i)%len(variants)]
			out[v] = append(out[v], run(v))
		}
	}
	return out
}

// Ms formats d in milliseconds with two decimals, as "1.23 ms".
func Ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
