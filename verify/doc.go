// Package verify evaluates Notary Project signatures of OCI artifacts under
// a trust-policy statement, reaching the verdict notation v1.3.2 reaches
// (notation-go v1.3.2 verifier.Verify and notation.Verify) and saying, per
// check, what was decided and why.
//
// # Model
//
// A [Verifier] holds the configuration and the caches of one run: envelope
// integrity, certificate chain validations, trust store certificates,
// revocation results per certificate chain, verified timestamp tokens,
// plugin metadata and CRLs. It is safe for concurrent
// use; there is no global state. [Verifier.Verify] evaluates one envelope
// for one artifact under one [Statement] and returns a [Result]: pass or
// fail, the failing check, and a [CheckResult] for every check in order,
// each with its action (enforce, log, skip), its outcome (passed, failed,
// skipped, not-run) and a message in notation's words. [Result.Err] carries
// the error notation-go returns, message for message. [Verifier.VerifyArtifact]
// walks an artifact's signatures as notation verify does.
//
// The statement and the trust store are interfaces defined here and
// implemented by packages policy and truststore: *policy.Statement and
// *truststore.TrustStore are used as they are.
//
// # Order of the checks
//
// The specification ("Trust Store and Trust Policy", section "Signature
// Verification", steps) and notation-go run the same steps; an enforced
// failure ends the evaluation, a logged one is recorded and the evaluation
// goes on ("every validation must run until the first enforced failure").
//
//  0. Level skip: the signature is not read; the artifact passes (spec step
//     2; [Verifier.VerifyArtifact] does not even list signatures).
//  1. [CheckIntegrity] (spec "Validate Integrity"; always enforced): the
//     envelope is parsed by its media type with notation-core-go, its
//     signature verifies with the leaf key under the algorithm the key
//     dictates, the signed attributes follow the envelope rules, the chain
//     meets the certificate requirements (no time check), and the payload
//     content type is application/vnd.cncf.notary.payload.v1+json.
//  2. [CheckPluginDiscovery] (spec "Perform extended validation"): when the
//     signature carries the critical extended attribute
//     io.cncf.notary.verificationPlugin, the plugin is looked up at
//     {NOTATION_LIBEXEC}/plugins/<name>/notation-<name> (spec "Plugin
//     installation"), get-plugin-metadata is run with the plugin config, the
//     version must be SemVer and at least io.cncf.notary.verificationPluginMinVersion,
//     and the plugin must have SIGNATURE_VERIFIER.TRUSTED_IDENTITY or
//     SIGNATURE_VERIFIER.REVOCATION_CHECK. Any failure ends the evaluation
//     at every level, as in notation. A signature that names keyward itself
//     is judged in process by package plugin, with no binary (keyward:
//     trusted identities; see package identity).
//  3. [CheckAuthenticity] (spec "Validate Authenticity"): some certificate
//     of the chain is byte-for-byte a certificate of the statement's trust
//     stores of the signing scheme's type: ca for notary.x509,
//     signingAuthority for notary.x509.signingAuthority (spec "Signing
//     Scheme"). Then [CheckTrustedIdentity] (spec "Trusted Identities"): the
//     leaf subject contains every attribute of an x509.subject identity, or
//     the identities are "*"; left to the plugin when it has
//     TRUSTED_IDENTITY. Both follow the authenticity action.
//  4. [CheckExpiry] (spec "Validate Expiry"): the signature has not expired.
//  5. [CheckAuthenticTimestamp] (spec "Validate Authentic Timestamp"): under
//     notary.x509.signingAuthority every certificate was valid at the
//     authentic signing time. Under notary.x509 the RFC 3161 timestamp is
//     verified (tspclient-go, against the tsa stores, with the
//     timestamping chain's revocation always enforced) when the statement
//     has a tsa store and verifyTimestamp is always, or afterCertExpiry
//     with an expired certificate; otherwise every certificate must be
//     valid now.
//  6. [CheckRevocation] (spec "Certificate Revocation Evaluation"): OCSP,
//     then CRL when OCSP cannot tell, for every certificate but the root,
//     with notation-core-go; skipped when the action is skip or the plugin
//     has REVOCATION_CHECK.
//  7. [CheckPluginVerification]: the plugin's verify-signature call (spec
//     "Verify signature"), with the request notation builds; every extended
//     attribute sent must come back processed, a capability without a result
//     is inconclusive, and TRUSTED_IDENTITY and REVOCATION_CHECK failures are
//     authenticity and revocation failures under their actions.
//  8. [CheckTargetArtifact] and [CheckUserMetadata] (always enforced): the
//     payload's targetArtifact has the artifact's digest, size and media
//     type; the user metadata asked for is among its annotations. Both run;
//     when both fail the error is the user metadata's, as in notation.
//
// # Where keyward differs from notation
//
// On purpose, and only where notation is unsafe: a plugin name from a
// signature that is not a single path element ("../x") is refused instead
// of being joined to the plugin directory (the verdict, a failed
// [CheckPluginDiscovery], is notation's; the message is not). Envelopes over
// [MaxEnvelopeSize] fail integrity. A panic inside a library fails the check
// that was running. A Verifier without a plugin directory reports its own
// message where notation's would name its nil plugin manager.
//
// Where the specification and notation disagree, keyward follows notation,
// whose verdicts it promises: an unknown critical extended attribute is not
// rejected when no verification plugin is named (the spec says it MUST
// be), nor when the plugin is not called because revocation is skipped;
// the plugin request omits the verificationPlugin attributes the spec lists.
//
// # Untrusted input
//
// Envelopes, plugin output, OCSP responses, CRLs and timestamp tokens are
// untrusted. Envelopes are bounded by [MaxEnvelopeSize], plugin output by
// [MaxPluginOutput], CRL cache files by the CRL size core accepts; evaluation
// never panics and fails closed (a fuzz test checks that no byte string
// passes).
package verify
