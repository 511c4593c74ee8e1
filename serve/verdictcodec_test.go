package serve

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/verify"
)

// sampleVerdict is a verified verdict with one signature shaped as the
// server's (ten checks, a two-certificate chain), for artifact i.
func sampleVerdict(i int) *verify.ReferenceResult {
	d := digest.FromString(fmt.Sprintf("artifact %d", i))
	sig := digest.FromString(fmt.Sprintf("signature %d", i))
	t0 := time.Unix(1_800_000_000+int64(i), 0).UTC() // signing time
	nb := time.Unix(1_700_000_000, 0).UTC()          // the chain's validity
	subject, root := "CN=signer,O=keyward-test,L=Seattle,ST=WA,C=US", "CN=root,O=keyward-test,L=Seattle,ST=WA,C=US"
	checks := []verify.CheckResult{
		{Check: "integrity", Action: "enforce", Outcome: "passed", Message: "the ECDSA-SHA-256 signature verifies with the key of \"" + subject + "\""},
		{Check: "pluginDiscovery", Action: "enforce", Outcome: "skipped", Message: "the signature does not name a verification plugin"},
		{Check: "authenticity", Action: "enforce", Outcome: "passed", Message: "certificate \"" + root + "\" of the chain is in the statement's ca trust stores"},
		{Check: "trustedIdentity", Action: "enforce", Outcome: "passed", Message: "signing certificate \"" + subject + "\" is a trusted identity"},
		{Check: "expiry", Action: "enforce", Outcome: "passed", Message: "the signature has no expiry"},
		{Check: "authenticTimestamp", Action: "enforce", Outcome: "passed", Message: "every certificate of the chain is valid now"},
		{Check: "revocation", Action: "enforce", Outcome: "passed", Message: "no certificate of the chain is revoked"},
		{Check: "pluginVerification", Action: "enforce", Outcome: "skipped", Message: "the signature does not name a verification plugin"},
		{Check: "targetArtifact", Action: "enforce", Outcome: "passed", Message: "the signature is for " + d.String()},
		{Check: "userMetadata", Action: "enforce", Outcome: "skipped", Message: "no user metadata was asked for"},
	}
	return &verify.ReferenceResult{Version: verify.ResultVersion, Reference: "registry.example/team/app@" + d.String(), Scope: "registry.example/team/app",
		Artifact:  &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 397},
		Statement: "prod", Level: "strict", Verified: true, ElapsedMS: 3,
		Signatures: []*verify.Result{{Signature: sig.String(), MediaType: "application/jose+json", Statement: "prod", Level: "strict", Passed: true, Checks: checks,
			Signer: &verify.Signer{Subject: subject, Issuer: root, SigningScheme: "notary.x509", EnvelopeType: "application/jose+json",
				SignatureAlgorithm: "ECDSA-SHA-256", SigningAgent: "notation-go/1.3.2", SigningTime: t0,
				Chain: []verify.Certificate{
					{Subject: subject, Issuer: root, SerialNumber: "18ee9495ee494129", NotBefore: nb, NotAfter: nb.Add(365 * 24 * time.Hour),
						SHA256: "6cb0f152003d83ee27c6b7117feab15ba71b1980cf8e78a5bf76e201ac5a753f", SHA1: "319eef845aeacfcbab08c8f244ee17af037e7c94"},
					{Subject: root, Issuer: root, SerialNumber: "18ee9495ee167cd0", NotBefore: nb, NotAfter: nb.Add(365 * 24 * time.Hour),
						SHA256: "cf3e2d2d4ebbf6bb1542b7c27e4d0eb4d8497ff52d184ac5db6e2baac64cb502", SHA1: "37b38d35eb0b2babc5082738528edc81a045ed37"}},
				TargetArtifact: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 397}}}}}
}

// fill sets every exported field reachable from v to a value of its own
// (strings "s<n>", numbers n, times n seconds, two elements a slice, one
// entry a map), so that a field the record forgets shows up.
func fill(t *testing.T, v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(*n))
	case reflect.Uint8:
		v.SetUint(uint64(*n))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(t, v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k, n)
		fill(t, e, n)
		v.SetMapIndex(k, e)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Unix(int64(*n), int64(*n)).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), n)
			}
		}
	case reflect.Interface:
		// verify.Result.Err: not part of a verdict's JSON, not kept.
	default:
		t.Fatalf("fill: a field of kind %s", v.Kind())
	}
}

// roundTrip keeps r in a table and decodes it back, as the cache does.
func roundTrip(t *testing.T, r *verify.ReferenceResult) *verify.ReferenceResult {
	t.Helper()
	body, slots := encodeVerdict(r)
	tbl := newStringTable()
	got := make([]string, len(slots))
	for i, s := range slots {
		got[i], _ = tbl.get(tbl.acquire(s))
	}
	out, err := decodeVerdict(string(body), got)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return out
}

func checkRoundTrip(t *testing.T, name string, r *verify.ReferenceResult) {
	t.Helper()
	before, _ := json.Marshal(r)
	out := roundTrip(t, r)
	if after, _ := json.Marshal(r); string(after) != string(before) {
		t.Errorf("%s: encoding changed the verdict", name)
	}
	if got, _ := json.Marshal(out); string(got) != string(before) {
		t.Errorf("%s: the record decodes to another verdict:\n got %s\nwant %s", name, got, before)
	}
	if !reflect.DeepEqual(out, r) {
		t.Errorf("%s: the record decodes to another value:\n got %#v\nwant %#v", name, out, r)
	}
}

// TestVerdictRecord: a verdict comes back from its record exactly (every
// field set, nil apart from empty, times in every zone, strings that hold
// the digest, a NUL, or look like digests).
func TestVerdictRecord(t *testing.T) {
	var every verify.ReferenceResult
	n := 0
	fill(t, reflect.ValueOf(&every).Elem(), &n)
	checkRoundTrip(t, "every field", &every)

	r := sampleVerdict(1)
	checkRoundTrip(t, "sample", r)

	odd := sampleVerdict(2)
	d := odd.Artifact.Digest
	s := odd.Signatures[0]
	s.Checks[0].Detail = "a NUL \x00 beside " + d.Encoded()
	s.Checks[1].Detail = d.Encoded() + d.Encoded()
	s.Checks[2].Detail = "SHA256:" + d.Encoded()
	s.Checks[3].Detail = "sha256:" + strings.ToUpper(d.Encoded())
	s.Checks[4].Detail = "sha512:" + d.Encoded() + d.Encoded()
	s.Checks = append(s.Checks, verify.CheckResult{})
	s.Signer.SigningTime = time.Unix(5, 7).In(time.FixedZone("", -7*3600))
	local := time.Unix(6, 0)
	s.Signer.Expiry = &local
	s.Signer.Timestamp = &verify.Timestamp{Time: time.Time{}, Accuracy: -time.Second, Authority: "CN=tsa"}
	s.Signer.TargetArtifact.Annotations = map[string]string{}
	s.Signer.TargetArtifact.URLs = []string{}
	s.Signer.TargetArtifact.Data = []byte{}
	odd.Artifact.Data = []byte{0, 1, 2}
	odd.Artifact.Platform = &ocispec.Platform{OS: "linux", OSFeatures: []string{"x", ""}}
	odd.Signatures = append(odd.Signatures, nil, &verify.Result{})
	checkRoundTrip(t, "odd", odd)

	failed := &verify.ReferenceResult{Version: verify.ResultVersion, Reference: "r.example/a:v1", Tag: "v1",
		Error: &verify.ReferenceError{Kind: verify.ErrorRetrievalFailed, Message: "registry unreachable"}}
	checkRoundTrip(t, "failed, no artifact", failed)
	failed.Signatures = []*verify.Result{}
	failed.Artifact = &ocispec.Descriptor{Digest: "sha512:abc", MediaType: "m"}
	failed.Error.Message = "no signature for sha512:abc"
	checkRoundTrip(t, "another algorithm", failed)

	// Verdicts of one repository and signer share every string: the
	// record of another artifact adds none to the table.
	body, slots := encodeVerdict(sampleVerdict(3))
	body2, slots2 := encodeVerdict(sampleVerdict(4))
	if !reflect.DeepEqual(slots, slots2) {
		t.Errorf("two artifacts of one signer have other strings:\n%q\n%q", slots, slots2)
	}
	t.Logf("sample verdict: a record body of %d bytes and %d strings", len(body), len(slots))
	if len(body) > 200 || len(body2) != len(body) {
		t.Errorf("record bodies of %d and %d bytes, want at most 200", len(body), len(body2))
	}
}

// TestVerdictRecordMalformed: a damaged record is an error, never a panic
// nor a verdict read past its end.
func TestVerdictRecordMalformed(t *testing.T) {
	body, slots := encodeVerdict(sampleVerdict(1))
	for i := range body {
		if _, err := decodeVerdict(string(body[:i]), slots); err == nil {
			t.Errorf("a record cut at %d of %d bytes decodes", i, len(body))
		}
		damaged := []byte(string(body))
		for _, b := range []byte{0xff, 0x80, 4, 0} {
			damaged[i] = b
			decodeVerdict(string(damaged), slots) // must not panic
		}
	}
	if _, err := decodeVerdict(string(body), slots[:len(slots)-1]); err == nil {
		t.Error("a record decodes without its last string")
	}
	if _, err := decodeVerdict(string(body)+"\x00", slots); err == nil {
		t.Error("a record with a byte left over decodes")
	}
}

// TestCacheRecords: a hit is a new copy (changing it changes no other
// hit), and the strings of evicted verdicts leave the table.
func TestCacheRecords(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewCache(context.Background(), CacheConfig{TTL: time.Minute, FailureTTL: time.Second, MaxEntries: 100})
	c.now = func() time.Time { return now }
	want, _ := json.Marshal(sampleVerdict(1))
	c.put("k1", sampleVerdict(1), time.Minute)
	a, ok := c.get("k1")
	if !ok {
		t.Fatal("no hit")
	}
	a.Reference = "changed"
	a.Signatures[0].Checks[0].Message = "changed"
	a.Signatures[0].Signer.Chain[0].Subject = "changed"
	b, ok := c.get("k1")
	if got, _ := json.Marshal(b); !ok || string(got) != string(want) {
		t.Fatalf("a hit after a caller changed its copy: %s", got)
	}
	if _, ok := c.get("k2"); ok {
		t.Error("a hit for a key never kept")
	}
	// Another signer's verdicts, with strings of their own.
	for i := range 150 {
		r := sampleVerdict(i)
		r.Signatures[0].Signer.Subject = fmt.Sprintf("CN=signer %d", i)
		r.Signatures[0].Checks[3].Message = fmt.Sprintf("signer %d is trusted", i)
		c.put(fmt.Sprintf("other%d", i), r, time.Second)
	}
	if c.Len() != 100 {
		t.Errorf("len %d, want the bound, 100", c.Len())
	}
	if _, ok := c.get("k1"); ok {
		t.Error("the least recently used verdict was kept beyond the bound")
	}
	now = now.Add(2 * time.Second)
	for i := range 150 {
		c.get(fmt.Sprintf("other%d", i)) // expired: dropped
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Len() != 0 || c.bytes != 0 || c.strings.bytes != 0 || len(c.strings.index) != 0 {
		t.Errorf("empty cache: %d entries, %d bytes, table %d bytes, %d strings", c.lru.Len(), c.bytes, c.strings.bytes, len(c.strings.index))
	}
}

// TestCacheByteBound: the byte bound holds, shared strings counted once.
func TestCacheByteBound(t *testing.T) {
	c := NewCache(context.Background(), CacheConfig{TTL: time.Minute, MaxEntries: 1 << 20, MaxBytes: 2 * 64 << 10})
	for i := range 1000 {
		c.put(fmt.Sprintf("k%d", i), sampleVerdict(i), time.Minute)
		if b := c.Bytes(); b > 64<<10 {
			t.Fatalf("after %d verdicts: %d bytes, above the bound", i+1, b)
		}
	}
	if n := c.Len(); n < 80 || n == 1000 {
		t.Errorf("%d verdicts in 64 KiB", n)
	}
	t.Logf("%d verdicts in 64 KiB", c.Len())
	huge := sampleVerdict(1)
	huge.Signatures[0].Checks[0].Detail = strings.Repeat("x", 64<<10)
	c.put("huge", huge, time.Minute)
	if _, ok := c.get("huge"); ok {
		t.Error("a verdict larger than the bound was kept")
	}
}

// BenchmarkCacheHit is a warm hit: the record decoded into a new verdict.
func BenchmarkCacheHit(b *testing.B) {
	c := NewCache(context.Background(), CacheConfig{TTL: time.Hour, MaxEntries: 1000})
	for i := range 1000 {
		c.put(fmt.Sprintf("registry.example/team/app\x00%d", i), sampleVerdict(i), time.Hour)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := c.get(fmt.Sprintf("registry.example/team/app\x00%d", i%1000)); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

// TestUvarint: the string decoder reads what binary.Uvarint reads,
// overflows and short input included.
func TestUvarint(t *testing.T) {
	inputs := [][]byte{nil, {0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02},
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}}
	for _, v := range []uint64{0, 1, 127, 128, 300, 1 << 32, math.MaxUint64} {
		inputs = append(inputs, binary.AppendUvarint(nil, v))
	}
	for _, b := range inputs {
		v, n := binary.Uvarint(b)
		gv, gn := uvarint(string(b))
		if v != gv || n != gn {
			t.Errorf("% x: uvarint %d, %d; binary.Uvarint %d, %d", b, gv, gn, v, n)
		}
	}
}
