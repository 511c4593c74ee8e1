package dn

import (
	"sort"
	"strconv"
)

// maxIndexedExtras bounds the attributes beyond C, ST and O whose
// combinations [Subsets] looks up for one DN: 2^10 = 1,024 lookups. A DN
// with more (which no real signer has) is compared with every other DN
// instead.
const maxIndexedExtras = 10

// pairwiseUpTo is the number of DNs up to which comparing every pair costs
// less than building the index (a statement usually lists one to three
// identities).
const pairwiseUpTo = 8

// Subsets calls yield(sub, sup) once for every ordered pair of distinct
// indexes with dns[sub].SubsetOf(dns[sup]), in no particular order. This
// is the relation notation-go v1.3.2 checks between the x509.subject
// identities of a statement (verifier/trustpolicy/trustpolicy.go,
// validateOverlappingDNs), which compares every pair.
//
// Subsets compares no pairs: a DN's non-empty attributes, which include C,
// ST and O for every DN [Parse] accepts, are a set, and every DN that is a
// subset of dns[sup] has for non-empty attributes C, ST, O and some of
// dns[sup]'s other attributes with the same values. Subsets indexes every
// DN by its set of non-empty attributes, then looks up, for each DN, each
// combination of its attributes beyond C, ST and O: a DN has few, so the
// cost grows with the number of DNs (plus the pairs found), not with its
// square (up to pairwiseUpTo DNs, comparing every pair is cheaper and
// Subsets does that). Each candidate is then confirmed with SubsetOf, which also reads
// attributes written with an empty value as notation does.
func Subsets(dns []DN, yield func(sub, sup int)) {
	if len(dns) <= pairwiseUpTo {
		for sup := range dns {
			for sub := range dns {
				if sub != sup && dns[sub].SubsetOf(dns[sup]) {
					yield(sub, sup)
				}
			}
		}
		return
	}
	byKey := make(map[string][]int, len(dns))
	var loose []int // DNs without C, ST or O, which Parse never returns
	var buf []byte
	for i, d := range dns {
		if !d.hasMandatory() {
			loose = append(loose, i)
			continue
		}
		attrs := d.sortedNonEmpty()
		buf = appendKey(buf[:0], attrs, func(int) bool { return true })
		byKey[string(buf)] = append(byKey[string(buf)], i)
	}
	isLoose := make(map[int]bool, len(loose))
	for _, i := range loose {
		isLoose[i] = true
	}
	for sup, d := range dns {
		attrs := d.sortedNonEmpty()
		var extras []int // positions in attrs of the attributes beyond C, ST, O
		for k, a := range attrs {
			if !isMandatory(a.Type) {
				extras = append(extras, k)
			}
		}
		if isLoose[sup] || len(extras) > maxIndexedExtras {
			for sub := range dns {
				if sub != sup && dns[sub].SubsetOf(d) {
					yield(sub, sup)
				}
			}
			continue
		}
		for mask := 0; mask < 1<<len(extras); mask++ {
			buf = appendKey(buf[:0], attrs, func(k int) bool {
				if isMandatory(attrs[k].Type) {
					return true
				}
				for bit, e := range extras {
					if e == k {
						return mask&(1<<bit) != 0
					}
				}
				return false
			})
			for _, sub := range byKey[string(buf)] {
				if sub != sup && dns[sub].SubsetOf(d) {
					yield(sub, sup)
				}
			}
		}
		for _, sub := range loose {
			if sub != sup && dns[sub].SubsetOf(d) {
				yield(sub, sup)
			}
		}
	}
}

func isMandatory(t string) bool {
	for _, m := range mandatoryTypes {
		if t == m {
			return true
		}
	}
	return false
}

// hasMandatory reports whether C, ST and O have non-empty values.
func (d DN) hasMandatory() bool {
	for _, m := range mandatoryTypes {
		if d.values[m] == "" {
			return false
		}
	}
	return true
}

// sortedNonEmpty returns the attributes with a non-empty value, sorted by
// type.
func (d DN) sortedNonEmpty() []Attribute {
	out := make([]Attribute, 0, len(d.types))
	for _, t := range d.types {
		if v := d.values[t]; v != "" {
			out = append(out, Attribute{Type: t, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// appendKey encodes the attributes attrs[k] that keep(k) selects, in order,
// each type and value prefixed by its length so that no two sets share a
// key.
func appendKey(buf []byte, attrs []Attribute, keep func(k int) bool) []byte {
	for k, a := range attrs {
		if !keep(k) {
			continue
		}
		buf = strconv.AppendInt(buf, int64(len(a.Type)), 10)
		buf = append(buf, ':')
		buf = append(buf, a.Type...)
		buf = strconv.AppendInt(buf, int64(len(a.Value)), 10)
		buf = append(buf, ':')
		buf = append(buf, a.Value...)
	}
	return buf
}
