package verify_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

// printResult prints the fields of a result that do not change from run to
// run (not the digests, times or durations).
func printResult(name string, r *verify.ReferenceResult) {
	fmt.Printf("%s: verified %t", name, r.Verified)
	if r.Statement != "" {
		fmt.Printf(", statement %q, level %s", r.Statement, r.Level)
	}
	fmt.Println()
	for _, s := range r.Signatures {
		// Signer is nil when the envelope's integrity could not be
		// verified: nothing in it can be trusted then.
		signer := "an unverified signer"
		if s.Signer != nil {
			signer = fmt.Sprintf("%q", s.Signer.Subject)
		}
		fmt.Printf("  signature by %s passed %t", signer, s.Passed)
		if s.FailedCheck != "" {
			fmt.Printf(", failed check %s", s.FailedCheck)
		}
		for _, w := range s.Warnings() {
			fmt.Printf(", logged failure of %s", w.Check)
		}
		fmt.Println()
	}
	if r.Error != nil {
		// The first line says what failed; when signatures were
		// evaluated, one more line per signature gives its reason and
		// names its digest, as notation's message does.
		first, _, _ := strings.Cut(r.Error.Message, "\n")
		fmt.Printf("  error (%s): %s\n", r.Error.Kind, first)
	}
}

// Batch.Verify is the verification keyward verify runs, as a library call:
// it selects the trust policy statement for the reference, resolves the
// reference, and evaluates its signatures. Here the artifact is in an OCI
// image layout (testdata/example/layout, tagged v1) signed by a JWS
// envelope; the trust store holds its root. The same artifact verified
// under three scopes meets three statements: strict with the signer
// trusted, audit with another identity trusted (logged, not enforced), and
// strict with another identity trusted (refused).
func ExampleBatch_Verify() {
	doc, err := policy.LoadFile("testdata/example/trustpolicy.json", policy.TypeAuto)
	if err != nil {
		fmt.Println(err)
		return
	}
	verifier, err := verify.NewVerifier(verify.Options{
		// The folder holding x509/ca/example/root.pem.
		TrustStore: truststore.New("testdata/example/truststore"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	batch := &verify.Batch{Policy: doc, Verifier: verifier, Source: oci.NewLayouts()}

	ctx := context.Background()
	for _, scope := range []string{"local/example", "local/example-audit", "local/example-other-signer"} {
		// An OCI layout has no registry name: the scope that selects the
		// statement is given with the reference, as notation's --scope.
		ref, err := reference.ParseLayout("testdata/example/layout:v1", scope)
		if err != nil {
			fmt.Println(err)
			return
		}
		printResult(scope, batch.Verify(ctx, ref))
	}
	// Output:
	// local/example: verified true, statement "example", level strict
	//   signature by "CN=keyward example signer,O=keyward-test,L=Seattle,ST=WA,C=US" passed true
	// local/example-audit: verified true, statement "example-audit", level audit
	//   signature by "CN=keyward example signer,O=keyward-test,L=Seattle,ST=WA,C=US" passed true, logged failure of trustedIdentity
	// local/example-other-signer: verified false, statement "example-other-signer", level strict
	//   signature by "CN=keyward example signer,O=keyward-test,L=Seattle,ST=WA,C=US" passed false, failed check trustedIdentity
	//   error (verification-failed): signature verification failed
}

// VerifyAll verifies many references with bounded concurrency and hands
// each result over as soon as it is ready; it returns how many did not
// verify. A reference that cannot be parsed or resolved gets a result with
// its error, in its turn, instead of stopping the run.
func ExampleBatch_VerifyAll() {
	doc, err := policy.LoadFile("testdata/example/trustpolicy.json", policy.TypeAuto)
	if err != nil {
		fmt.Println(err)
		return
	}
	verifier, err := verify.NewVerifier(verify.Options{TrustStore: truststore.New("testdata/example/truststore")})
	if err != nil {
		fmt.Println(err)
		return
	}
	batch := &verify.Batch{Policy: doc, Verifier: verifier, Source: oci.NewLayouts()}

	refs := []string{
		"testdata/example/layout:v1",
		"testdata/example/layout:v2",
		"testdata/example/layout",
	}
	parse := func(s string) (reference.Reference, error) { return reference.ParseLayout(s, "local/example") }
	// One at a time, so that the output below is in order; a real caller
	// picks its concurrency and receives results in completion order.
	failed := batch.VerifyAll(context.Background(), refs, parse, 1, func(r *verify.ReferenceResult) {
		printResult(r.Reference, r)
	})
	fmt.Println(failed, "of", len(refs), "did not verify")
	// Output:
	// testdata/example/layout:v1: verified true, statement "example", level strict
	//   signature by "CN=keyward example signer,O=keyward-test,L=Seattle,ST=WA,C=US" passed true
	// testdata/example/layout:v2: verified false, statement "example", level strict
	//   error (resolve): v2 not found in OCI layout "testdata/example/layout"
	// testdata/example/layout: verified false
	//   error (resolve): OCI layout reference "testdata/example/layout" names no tag or digest: use <path>@sha256:<digest> or <path>:<tag>
	// 2 of 3 did not verify
}
