package filekey_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/keys"
)

// TestScryptBounds opens encrypted keys whose scrypt parameters would make
// scrypt allocate gigabytes or compute for minutes, and checks that each is
// refused at once, without allocating, with a message naming the parameters
// and the bound; parameters within the bounds reach decryption.
func TestScryptBounds(t *testing.T) {
	f := newFixture(t, "EC-256")
	passFile := testpki.WriteFile(t, f.dir, "pass.txt", []byte("secret\n"), 0o600)
	for _, tc := range []struct {
		n, r, p int
		want    string
		invalid bool // refused as invalid, else reaches decryption
	}{
		{1 << 22, 1024, 1, "more than the 256 MiB keyward allows", true}, // 512 GiB
		{1 << 22, 1, 1024, "more than the 256 MiB keyward allows", true},
		{1 << 20, 8, 1, "need 1025 MiB of memory", true},
		{1 << 14, 1, 1024, "more than the 4194304 keyward allows", true}, // 2 MiB but 2^24 rounds
		{1 << 14, 8, 64, "more than the 4194304 keyward allows", true},
		{1 << 40, 1, 1, "must be a power of two from 2 to 2^30", true},
		{1 << 62, 1 << 62, 1 << 62, "must be a power of two from 2 to 2^30", true},
		{3000, 8, 1, "must be a power of two", true},
		{1 << 14, 0, 1, "r and p from 1 to 2^30", true},
		{1 << 14, 8, -1, "r and p from 1 to 2^30", true},
		// Within the bounds (OpenSSL's default): scrypt runs, and the
		// zero ciphertext fails as a wrong passphrase does.
		{1 << 14, 8, 1, "passphrase is wrong", false},
	} {
		name := fmt.Sprintf("N=%d r=%d p=%d", tc.n, tc.r, tc.p)
		t.Run(name, func(t *testing.T) {
			path := testpki.WriteFile(t, t.TempDir(), "key.pem", testpki.ScryptKeyPEM(tc.n, tc.r, tc.p), 0o600)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := open(t, "file:"+path, keys.Config{"cert_chain": f.chain, "passphrase_file": passFile}, nil)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			want := keys.KindAccessDenied
			if tc.invalid {
				want = keys.KindInvalid
			}
			if keys.KindOf(err) != want || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open() = %v (kind %v), want kind %v containing %q", err, keys.KindOf(err), want, tc.want)
			}
			if !tc.invalid {
				return
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("the error does not name the parameters %q: %v", name, err)
			}
			// A refusal happens before scrypt: no allocation beyond
			// reading the files, and no time.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
				t.Errorf("refusing the key allocated %d bytes, want < 4 MiB", alloc)
			}
			if elapsed > 500*time.Millisecond {
				t.Errorf("refusing the key took %v, want < 500ms", elapsed)
			}
		})
	}
}
