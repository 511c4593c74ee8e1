// Package timing holds the wall-time samples of the benchmarks in bench/:
// variants of a comparison run alternately, then are summarised by
// quantiles. It is a helper of benchmark code only.
package timing

import (
	"fmt"
	"slices"
	"sync"
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

// Parallel runs fn(0..n-1) on at most workers goroutines and returns when
// every call has.
func Parallel(n, workers int, fn func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				fn(i)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// Ratio is a/b, or 0 when b is not positive.
func Ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Millis is d in milliseconds.
func Millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Met says whether a benchmark goal was met: "met" or "missed".
func Met(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
