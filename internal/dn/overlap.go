package dn

import "sort"

// Overlapping calls yield(a, b), a < b, once for every pair of DNs that
// [DN.Overlaps] finds overlapping (one certificate subject could match
// both), in increasing order of b, then a.
//
// It compares few pairs: two overlapping DNs give the same value to every
// attribute type they both have, so a group of DNs that all have some type
// splits by that type's value into groups that cannot overlap one another.
// Overlapping splits on every type all members of a group have (C, ST and
// O first of all, then OU, CN... when every DN has them) and compares
// pairs only within the groups left, which are small unless many DNs
// really do overlap.
func Overlapping(dns []DN, yield func(a, b int)) {
	group := make([]int, len(dns))
	for i := range group {
		group[i] = i
	}
	var pairs [][2]int
	overlapGroups(dns, group, nil, func(a, b int) { pairs = append(pairs, [2]int{a, b}) })
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][1] != pairs[j][1] {
			return pairs[i][1] < pairs[j][1]
		}
		return pairs[i][0] < pairs[j][0]
	})
	for _, p := range pairs {
		yield(p[0], p[1])
	}
}

// overlapGroups finds the overlapping pairs of group (indexes into dns, in
// increasing order), whose members agree on every type in split.
func overlapGroups(dns []DN, group []int, split []string, yield func(a, b int)) {
	if len(group) < 2 {
		return
	}
	t, ok := "", false
	if len(group) > pairwiseUpTo {
		t, ok = commonType(dns, group, split)
	}
	if !ok {
		for j, b := range group {
			for _, a := range group[:j] {
				if dns[a].Overlaps(dns[b]) {
					yield(a, b)
				}
			}
		}
		return
	}
	byValue := map[string][]int{}
	var values []string // in order of first appearance, for a stable order
	for _, i := range group {
		v := dns[i].values[t]
		if _, seen := byValue[v]; !seen {
			values = append(values, v)
		}
		byValue[v] = append(byValue[v], i)
	}
	split = append(split[:len(split):len(split)], t)
	for _, v := range values {
		overlapGroups(dns, byValue[v], split, yield)
	}
}

// commonType returns a type, not in split, that every member of group has
// (with a value, even an empty one, as Overlaps reads presence).
func commonType(dns []DN, group []int, split []string) (string, bool) {
	first := dns[group[0]]
candidates:
	for _, t := range first.types {
		for _, s := range split {
			if s == t {
				continue candidates
			}
		}
		for _, i := range group[1:] {
			if _, ok := dns[i].values[t]; !ok {
				continue candidates
			}
		}
		return t, true
	}
	return "", false
}
