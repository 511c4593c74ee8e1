package timing

import (
	"slices"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	s := Samples{5, 1, 4, 2, 3} // unsorted on purpose
	for q, want := range map[float64]time.Duration{0: 1, 0.5: 3, 0.9: 5, 1: 5} {
		if got := s.Quantile(q); got != want {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if !slices.Equal(s, Samples{5, 1, 4, 2, 3}) {
		t.Errorf("Quantile sorted the samples in place: %v", s)
	}
	if (Samples{}).Median() != 0 {
		t.Error("Median of no samples is not 0")
	}
}

func TestAlternate(t *testing.T) {
	var order []string
	got := Alternate(3, []string{"a", "b"}, func(v string) time.Duration {
		order = append(order, v)
		return time.Duration(len(order))
	})
	if want := []string{"a", "b", "b", "a", "a", "b"}; !slices.Equal(order, want) {
		t.Errorf("run order %v, want %v", order, want)
	}
	if !slices.Equal(got["a"], Samples{1, 4, 5}) || !slices.Equal(got["b"], Samples{2, 3, 6}) {
		t.Errorf("samples %v", got)
	}
}

func TestMs(t *testing.T) {
	if got := Ms(1234567 * time.Nanosecond); got != "1.23 ms" {
		t.Errorf("Ms = %q", got)
	}
}
