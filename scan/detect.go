package scan

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // registers the COSE envelope
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // registers the JWS envelope

	"github.com/keyward/keyward/identity"
	"github.com/keyward/keyward/internal/coreshim"
	"github.com/keyward/keyward/policy"
)

// Media types, artifact types and annotations of the formats a registry
// holds (shared/formats.md A0–A2, with their sources there).
const (
	// mtNotation is the Notary Project signature artifact type.
	mtNotation = "application/vnd.cncf.notary.signature"
	// mtSimpleSigning is a cosign signature layer (cosign
	// pkg/types/media.go).
	mtSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// mtDSSE is a cosign attestation layer (cosign pkg/types/payload.go).
	mtDSSE = "application/vnd.dsse.envelope.v1+json"
	// atCosignSig is the artifactType of a cosign signature pushed in OCI
	// 1.1 referrers mode (cosign internal/pkg/oci/remote ArtifactType).
	atCosignSig = "application/vnd.dev.cosign.artifact.sig.v1+json"
	// atCosignSBOM is the artifactType of a cosign SBOM in referrers mode.
	atCosignSBOM = "application/vnd.dev.cosign.artifact.sbom.v1+json"
	// atInToto marks cosign attestations written as referrers.
	atInToto = "application/vnd.in-toto+json"
	// mtBundlePrefix starts every Sigstore bundle media type (v0.3:
	// application/vnd.dev.sigstore.bundle.v0.3+json; legacy
	// application/vnd.dev.sigstore.bundle+json;version=0.x).
	mtBundlePrefix = "application/vnd.dev.sigstore.bundle"
	// predicateCosignSign marks a Sigstore bundle that is an image
	// signature; any other predicate type is an attestation (cosign
	// pkg/types/predicate.go).
	predicateCosignSign = "https://sigstore.dev/cosign/sign/v1"

	annBundlePredicate = "dev.sigstore.bundle.predicateType"
	annCosignSignature = "dev.cosignproject.cosign/signature"
	annCosignCert      = "dev.sigstore.cosign/certificate"
	annCosignRekor     = "dev.sigstore.cosign/bundle"
	annPredicateType   = "predicateType"
	annCreated         = "org.opencontainers.image.created"
)

// cosignTag matches cosign's attachment tags and the referrers tag schema:
// <alg>-<hex>[.sig|.att|.sbom] (cosign pkg/oci/remote/options.go; OCI
// distribution-spec "Referrers Tag Schema").
var cosignTag = regexp.MustCompile(`^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(\.(sig|att|sbom))?$`)

// attachmentTag splits an attachment tag into the digest it names and its
// suffix ("" for a referrers tag-schema index); ok is false for an
// ordinary tag.
func attachmentTag(tag string) (subject, suffix string, ok bool) {
	m := cosignTag.FindStringSubmatch(tag)
	if m == nil {
		return "", "", false
	}
	if (m[1] == "sha256") != (len(m[2]) == 64) {
		return "", "", false
	}
	return m[1] + ":" + m[2], m[4], true
}

// classifyReferrer gives a referrer descriptor its role and format from
// its artifact type and annotations, as a registry's referrers list shows
// them.
func classifyReferrer(artifactType string, annotations map[string]string) (role, format string) {
	switch {
	case artifactType == mtNotation:
		return RoleSignature, FormatNotation
	case strings.HasPrefix(artifactType, mtBundlePrefix):
		if p := annotations[annBundlePredicate]; p != "" && p != predicateCosignSign {
			return RoleAttestation, FormatSigstoreBundle
		}
		return RoleSignature, FormatSigstoreBundle
	case artifactType == atCosignSig:
		return RoleSignature, FormatSimpleSigning
	case artifactType == atInToto:
		return RoleAttestation, FormatDSSE
	case artifactType == atCosignSBOM || isSBOMType(artifactType):
		return RoleSBOM, FormatSBOM
	}
	return RoleOther, FormatUnknown
}

// isSBOMType reports the SBOM media types cosign and others attach
// (cosign pkg/types/media.go).
func isSBOMType(t string) bool {
	for _, p := range []string{"text/spdx", "application/spdx", "application/vnd.cyclonedx", "application/vnd.syft"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// manifest is the part of an image manifest or index the scan reads.
type manifest struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Config       descriptor        `json:"config"`
	Layers       []descriptor      `json:"layers"`
	Manifests    []descriptor      `json:"manifests"`
	Subject      *descriptor       `json:"subject"`
	Annotations  map[string]string `json:"annotations"`
}

// descriptor is an OCI descriptor with the platform of an index entry.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant,omitempty"`
	} `json:"platform,omitempty"`
}

func (d descriptor) platform() string {
	if d.Platform == nil {
		return ""
	}
	p := d.Platform.OS + "/" + d.Platform.Architecture
	if d.Platform.Variant != "" {
		p += "/" + d.Platform.Variant
	}
	return p
}

// simpleSigning is a Simple Signing payload (sigstore/sigstore
// pkg/signature/payload/payload.go; containers/image
// signature/internal/sigstore_payload.go).
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// readSimpleSigning fills s from a Simple Signing payload and says what is
// wrong with it.
func readSimpleSigning(s *Signature, payload []byte, subject string) {
	var p simpleSigning
	if err := json.Unmarshal(payload, &p); err != nil {
		s.Findings = append(s.Findings, "the Simple Signing payload is not JSON: "+err.Error())
		return
	}
	if p.Critical.Type != "cosign container image signature" && p.Critical.Type != "atomic container signature" {
		s.Findings = append(s.Findings, fmt.Sprintf("the Simple Signing payload has critical.type %q", p.Critical.Type))
	}
	s.SignedDigest = p.Critical.Image.DockerManifestDigest
	s.DockerReference = p.Critical.Identity.DockerReference
	if c, ok := p.Optional["creator"].(string); ok {
		s.Creator = c
	}
	if subject != "" && s.SignedDigest != subject {
		s.Findings = append(s.Findings, fmt.Sprintf("the payload signs %s, not the artifact %s", s.SignedDigest, subject))
	}
}

// notationIdentity reads the leaf certificate of a Notary Project envelope
// (not verified): the envelope's content as notation-core-go's
// Envelope.Content checks it, the chain validation remembered by chains.
func notationIdentity(mediaType string, envelope []byte, chains *chains) (*Identity, error) {
	env, err := signature.ParseEnvelope(mediaType, envelope)
	if err != nil {
		return nil, fmt.Errorf("the %s envelope does not parse: %w", mediaType, err)
	}
	var content *signature.EnvelopeContent
	if raw := coreshim.Unwrap(env); raw != nil {
		content, err = coreshim.Content(raw, chains.validate)
	} else {
		content, err = env.Content() // another notation-core-go: its own checks
	}
	if err != nil {
		return nil, fmt.Errorf("the %s envelope's content does not parse: %w", mediaType, err)
	}
	if len(content.SignerInfo.CertificateChain) == 0 {
		return nil, fmt.Errorf("the %s envelope has no certificate chain", mediaType)
	}
	return certIdentity(content.SignerInfo.CertificateChain[0]), nil
}

// fulcioArc is 1.3.6.1.4.1.57264.1, Fulcio's extensions
// (sigstore/fulcio docs/oid-info.md).
var fulcioArc = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1}

// certIdentity describes a leaf certificate as a signer.
func certIdentity(leaf *x509.Certificate) *Identity {
	spki := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	thumb := sha256.Sum256(leaf.Raw)
	id := &Identity{
		Subject:    leaf.Subject.String(),
		Issuer:     leaf.Issuer.String(),
		SHA256:     hex.EncodeToString(thumb[:]),
		SPKISHA256: base64.StdEncoding.EncodeToString(spki[:]),
	}
	if id.Subject != "" {
		if dn, err := policy.ParseDN(id.Subject); err == nil {
			id.X509Subject = policy.X509SubjectPrefix + ": " + dn.String()
			id.TrustedIdentities = append(id.TrustedIdentities, id.X509Subject)
		}
	}
	for _, u := range leaf.URIs {
		id.SANs = append(id.SANs, "uri:"+u.String())
	}
	for _, e := range leaf.EmailAddresses {
		id.SANs = append(id.SANs, "email:"+e)
	}
	for _, d := range leaf.DNSNames {
		id.SANs = append(id.SANs, "dns:"+d)
	}
	for _, ip := range leaf.IPAddresses {
		id.SANs = append(id.SANs, "ip:"+ip.String())
	}
	names := map[string]string{}
	for _, n := range identity.FulcioNames() {
		if oid, ok := identity.FulcioOID(n); ok {
			names[oid.String()] = n
		}
	}
	var issuerV1, issuerV2 string
	for _, e := range leaf.Extensions {
		if len(e.Id) != len(fulcioArc)+1 || !e.Id[:len(fulcioArc)].Equal(fulcioArc) {
			continue
		}
		last := e.Id[len(fulcioArc)]
		switch {
		case last == 1:
			// .1.1 holds the issuer as raw bytes (deprecated).
			if utf8.Valid(e.Value) {
				issuerV1 = string(e.Value)
			}
			continue
		case last <= 6:
			continue // deprecated raw-byte GitHub workflow fields
		}
		v, ok := utf8String(e.Value)
		if !ok {
			continue
		}
		if last == 8 {
			issuerV2 = v
			continue
		}
		if id.Fulcio == nil {
			id.Fulcio = map[string]string{}
		}
		name := names[e.Id.String()]
		if name == "" {
			name = e.Id.String()
		}
		id.Fulcio[name] = v
	}
	id.OIDCIssuer = issuerV2
	if id.OIDCIssuer == "" {
		id.OIDCIssuer = issuerV1
	}
	for _, s := range identity.Suggest(leaf) {
		id.TrustedIdentities = append(id.TrustedIdentities, s.Identity)
	}
	return id
}

// utf8String decodes a DER UTF8String with nothing after it.
func utf8String(der []byte) (string, bool) {
	var rv asn1.RawValue
	rest, err := asn1.Unmarshal(der, &rv)
	if err != nil || len(rest) > 0 || rv.Class != asn1.ClassUniversal || rv.Tag != asn1.TagUTF8String || !utf8.Valid(rv.Bytes) {
		return "", false
	}
	return string(rv.Bytes), true
}

// pemLeaf parses the first certificate of a PEM text.
func pemLeaf(text string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(text))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("not a PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// hintIdentity describes a key by its hint; the hint becomes a trusted
// identity (keyward: spki.sha256=) only when it is what a key pin is, the
// standard base64 of 32 bytes: a bundle's hint is whatever its author
// wrote, and a scan suggests only identities a trust policy accepts.
func hintIdentity(hint string) *Identity {
	id := &Identity{KeyHint: hint}
	if b, err := base64.StdEncoding.Strict().DecodeString(hint); err == nil && len(b) == sha256.Size {
		id.TrustedIdentities = []string{identity.Prefix + ": " + identity.KeySPKISHA256 + "=" + hint}
	}
	return id
}

// keyHint is the base64 SHA-256 of a DER SubjectPublicKeyInfo.
func keyHint(spki []byte) string {
	sum := sha256.Sum256(spki)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// cosignLayerIdentity reads the signer of a cosign signature or
// attestation layer from its annotations: the certificate of a keyless or
// certificate signature; else the key of the Rekor entry in the bundle
// annotation (unauthenticated: the Rekor signature is not checked); else
// nothing, for a plain key signature without transparency log.
func cosignLayerIdentity(annotations map[string]string) (*Identity, []string) {
	if c := annotations[annCosignCert]; c != "" {
		leaf, err := pemLeaf(c)
		if err != nil {
			return nil, []string{"the certificate annotation does not parse: " + err.Error()}
		}
		return certIdentity(leaf), nil
	}
	if b := annotations[annCosignRekor]; b != "" {
		if id, err := rekorIdentity(b); err == nil {
			return id, nil
		} else {
			return nil, []string{"the Rekor bundle annotation does not name a key: " + err.Error()}
		}
	}
	return nil, []string{"key-based signature without certificate or transparency-log entry: the registry does not say which key signed (verify it with the candidate public keys)"}
}

// rekorIdentity reads the public key or certificate of the hashedrekord
// entry in cosign's bundle annotation (shared/formats.md A3).
func rekorIdentity(annotation string) (*Identity, error) {
	var b struct {
		Payload struct {
			Body string `json:"body"`
		} `json:"Payload"`
	}
	if err := json.Unmarshal([]byte(annotation), &b); err != nil {
		return nil, err
	}
	body, err := base64.StdEncoding.DecodeString(b.Payload.Body)
	if err != nil {
		return nil, fmt.Errorf("the Rekor entry (Payload.body) is not base64: %w", err)
	}
	var entry struct {
		Spec struct {
			Signature struct {
				PublicKey struct {
					Content string `json:"content"`
				} `json:"publicKey"`
			} `json:"signature"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &entry); err != nil {
		return nil, err
	}
	pemBytes, err := base64.StdEncoding.DecodeString(entry.Spec.Signature.PublicKey.Content)
	if err != nil {
		return nil, fmt.Errorf("spec.signature.publicKey.content: %w", err)
	}
	return keyOrCertIdentity(pemBytes)
}

// keyOrCertIdentity describes a PEM certificate or public key.
func keyOrCertIdentity(pemBytes []byte) (*Identity, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	switch blk.Type {
	case "CERTIFICATE":
		leaf, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		return certIdentity(leaf), nil
	case "PUBLIC KEY":
		if _, err := x509.ParsePKIXPublicKey(blk.Bytes); err != nil {
			return nil, err
		}
		return hintIdentity(keyHint(blk.Bytes)), nil
	}
	return nil, fmt.Errorf("PEM block %q", blk.Type)
}

// bundle is the part of a Sigstore bundle the scan reads
// (sigstore/protobuf-specs sigstore_bundle.proto, protojson).
type bundle struct {
	MediaType            string `json:"mediaType"`
	VerificationMaterial struct {
		PublicKey *struct {
			Hint string `json:"hint"`
		} `json:"publicKey"`
		Certificate *struct {
			RawBytes []byte `json:"rawBytes"`
		} `json:"certificate"`
		X509CertificateChain *struct {
			Certificates []struct {
				RawBytes []byte `json:"rawBytes"`
			} `json:"certificates"`
		} `json:"x509CertificateChain"`
	} `json:"verificationMaterial"`
	DSSEEnvelope *struct {
		Payload     []byte `json:"payload"`
		PayloadType string `json:"payloadType"`
	} `json:"dsseEnvelope"`
	MessageSignature *struct {
		MessageDigest struct {
			Algorithm string `json:"algorithm"`
			Digest    []byte `json:"digest"`
		} `json:"messageDigest"`
	} `json:"messageSignature"`
}

// readBundle fills s from a Sigstore bundle: signer, predicate type and
// the digest it signs.
func readBundle(s *Signature, data []byte, subject string) {
	var b bundle
	if err := json.Unmarshal(data, &b); err != nil {
		s.Findings = append(s.Findings, "the Sigstore bundle is not JSON: "+err.Error())
		return
	}
	vm := b.VerificationMaterial
	var raw []byte
	switch {
	case vm.Certificate != nil:
		raw = vm.Certificate.RawBytes
	case vm.X509CertificateChain != nil && len(vm.X509CertificateChain.Certificates) > 0:
		raw = vm.X509CertificateChain.Certificates[0].RawBytes
	}
	switch {
	case raw != nil:
		leaf, err := x509.ParseCertificate(raw)
		if err != nil {
			s.Findings = append(s.Findings, "the bundle's certificate does not parse: "+err.Error())
		} else {
			s.Identities = append(s.Identities, certIdentity(leaf))
		}
	case vm.PublicKey != nil && vm.PublicKey.Hint != "":
		id := hintIdentity(vm.PublicKey.Hint)
		if len(id.TrustedIdentities) == 0 {
			s.Findings = append(s.Findings, "the bundle's key hint is not the base64 SHA-256 of a public key: no trusted identity is suggested for it")
		}
		s.Identities = append(s.Identities, id)
	default:
		s.Findings = append(s.Findings, "the bundle names no certificate and no key hint")
	}
	if b.DSSEEnvelope != nil && b.DSSEEnvelope.PayloadType == "application/vnd.in-toto+json" {
		var st struct {
			PredicateType string `json:"predicateType"`
			Subject       []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
		}
		if err := json.Unmarshal(b.DSSEEnvelope.Payload, &st); err == nil {
			if s.PredicateType == "" {
				s.PredicateType = st.PredicateType
			}
			if st.PredicateType != "" && st.PredicateType != predicateCosignSign {
				s.Role = RoleAttestation
			}
			// A statement may name several subjects: the artifact's, when
			// one is, is the digest it signs.
			for _, sub := range st.Subject {
				if h := sub.Digest["sha256"]; h != "" && (s.SignedDigest == "" || "sha256:"+h == subject) {
					s.SignedDigest = "sha256:" + h
				}
			}
		}
	}
	if b.MessageSignature != nil && strings.EqualFold(b.MessageSignature.MessageDigest.Algorithm, "SHA2_256") {
		s.SignedDigest = "sha256:" + hex.EncodeToString(b.MessageSignature.MessageDigest.Digest)
	}
	if subject != "" && s.SignedDigest != "" && s.SignedDigest != subject {
		s.Findings = append(s.Findings, fmt.Sprintf("the bundle signs %s, not the artifact %s", s.SignedDigest, subject))
	}
}

// readDSSE reads the predicate type of a cosign attestation layer.
func readDSSE(s *Signature, data []byte) {
	var env struct {
		Payload     string `json:"payload"`
		PayloadType string `json:"payloadType"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		s.Findings = append(s.Findings, "the DSSE envelope is not JSON: "+err.Error())
		return
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return
	}
	var st struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(bytes.TrimSpace(payload), &st) == nil && s.PredicateType == "" {
		s.PredicateType = st.PredicateType
	}
}
