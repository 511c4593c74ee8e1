package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/keyward/keyward/internal/version"
	"github.com/keyward/keyward/keys"
)

// Plugin config keys the plugin itself reads; key backends read the others.
const (
	// ConfigSigningMode selects the capability: "raw" (default), where
	// notation builds the envelope and keyward signs its bytes, or
	// "envelope", where keyward builds the whole envelope.
	ConfigSigningMode = "signing_mode"
	// ConfigSigningScheme selects the signing scheme of envelopes keyward
	// builds: "notary.x509" (default) or "notary.x509.signingAuthority".
	ConfigSigningScheme = "signing_scheme"
)

// Signing modes.
const (
	ModeRaw      = "raw"
	ModeEnvelope = "envelope"
)

// options are the plugin-level settings of a request's plugin config.
type options struct {
	mode string
	// verificationPlugin: name keyward as the verification plugin.
	verificationPlugin bool
	scheme             signature.SigningScheme
	tsaURL             string // timestamp_url
	tsaRoot            string // timestamp_root_cert
}

// parseOptions reads the plugin-level config keys. It does no I/O: it runs
// for get-plugin-metadata, which notation calls on every sign and verify.
func parseOptions(cfg map[string]string) (options, error) {
	o := options{mode: ModeRaw, scheme: signature.SigningSchemeX509}
	if v, ok := cfg[ConfigSigningMode]; ok {
		switch v {
		case ModeRaw, ModeEnvelope:
			o.mode = v
		default:
			return o, validationErrorf("plugin config %s=%q is not supported: use %s=%s (notation builds the envelope, the default) or %s=%s (keyward builds it)",
				ConfigSigningMode, v, ConfigSigningMode, ModeRaw, ConfigSigningMode, ModeEnvelope)
		}
	}
	if v, ok := cfg[ConfigSigningScheme]; ok {
		switch s := signature.SigningScheme(v); s {
		case signature.SigningSchemeX509, signature.SigningSchemeX509SigningAuthority:
			o.scheme = s
		default:
			return o, validationErrorf("plugin config %s=%q is not supported: use %s or %s",
				ConfigSigningScheme, v, signature.SigningSchemeX509, signature.SigningSchemeX509SigningAuthority)
		}
	}
	if o.scheme == signature.SigningSchemeX509SigningAuthority && o.mode != ModeEnvelope {
		return o, validationErrorf("plugin config %s=%s needs %s=%s: in raw mode notation builds the envelope and always uses %s",
			ConfigSigningScheme, o.scheme, ConfigSigningMode, ModeEnvelope, signature.SigningSchemeX509)
	}
	var err error
	if o.verificationPlugin, err = parseVerificationPlugin(cfg, o.mode); err != nil {
		return o, err
	}
	o.tsaURL, o.tsaRoot = cfg[ConfigTimestampURL], cfg[ConfigTimestampRootCert]
	return o, checkTimestampOptions(o)
}

// pluginConfigKeys are the config keys consumed here, passed to the key
// opener as known.
var pluginConfigKeys = []string{ConfigSigningMode, ConfigSigningScheme, ConfigTimestampURL, ConfigTimestampRootCert, ConfigVerificationPlugin,
	ConfigOCSPTimeout, ConfigCRLTimeout, ConfigCRLBundle}

func (p *Plugin) metadata(req *pfw.GetMetadataRequest) (*pfw.GetMetadataResponse, error) {
	o, err := parseOptions(req.PluginConfig)
	if err != nil {
		return nil, err
	}
	// notation uses RAW whenever it is advertised (notation-go
	// signer.PluginSigner.Sign), so envelope mode advertises ENVELOPE only.
	// The verifier capabilities matter only for signatures that name
	// keyward as their verification plugin; they do not change signing.
	capability := pfw.CapabilitySignatureGenerator
	if o.mode == ModeEnvelope {
		capability = pfw.CapabilityEnvelopeGenerator
	}
	return &pfw.GetMetadataResponse{
		Name:                      Name,
		Description:               "Signs with keys kept outside notation: PEM key files and PKCS#11 tokens (HSMs, smartcards, SoftHSM); verifies keyward: trusted identities",
		Version:                   version.Version,
		URL:                       "https://github.com/keyward/keyward",
		SupportedContractVersions: []string{ContractVersion},
		Capabilities:              append([]pfw.Capability{capability}, verifierCapabilities...),
	}, nil
}

// checkContract checks the contract version and the required string fields,
// given as name/value pairs, in order.
func checkContract(command, contract string, fields ...string) error {
	if contract == "" {
		return validationErrorf("%s request: contractVersion cannot be empty; keyward implements contract version %q", command, ContractVersion)
	}
	if contract != ContractVersion {
		return &codedError{code: CodeUnsupportedContractVersion, err: fmt.Errorf(
			"%q is not a supported notary plugin contract version: keyward %s supports %q; use a notation release that speaks contract %s",
			contract, version.Version, ContractVersion, ContractVersion)}
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return validationErrorf("%s request: %s cannot be empty", command, fields[i])
		}
	}
	return nil
}

func (p *Plugin) open(ctx context.Context, keyID string, cfg map[string]string) (*keys.Key, keys.Spec, error) {
	k, err := p.keys.Open(ctx, keyID, cfg, pluginConfigKeys...)
	if err != nil {
		return nil, keys.Spec{}, err
	}
	spec, err := k.Spec()
	if err != nil {
		_ = k.Release()
		return nil, keys.Spec{}, err
	}
	return k, spec, nil
}

func (p *Plugin) describeKey(ctx context.Context, req *pfw.DescribeKeyRequest) (*pfw.DescribeKeyResponse, error) {
	if err := checkContract("describe-key", req.ContractVersion, "keyId", req.KeyID); err != nil {
		return nil, err
	}
	if _, err := parseOptions(req.PluginConfig); err != nil {
		return nil, err
	}
	spec, err := p.keys.Describe(ctx, req.KeyID, req.PluginConfig, pluginConfigKeys...)
	if err != nil {
		return nil, err
	}
	return &pfw.DescribeKeyResponse{KeyID: req.KeyID, KeySpec: pfw.KeySpec(spec.Name)}, nil
}

func (p *Plugin) generateSignature(ctx context.Context, req *pfw.GenerateSignatureRequest) (*pfw.GenerateSignatureResponse, error) {
	if err := checkContract("generate-signature", req.ContractVersion,
		"keyId", req.KeyID, "keySpec", string(req.KeySpec), "hashAlgorithm", string(req.Hash)); err != nil {
		return nil, err
	}
	if len(req.Payload) == 0 {
		return nil, validationErrorf("generate-signature request: payload cannot be empty")
	}
	if _, err := parseOptions(req.PluginConfig); err != nil {
		return nil, err
	}
	k, spec, err := p.open(ctx, req.KeyID, req.PluginConfig)
	if err != nil {
		return nil, err
	}
	defer k.Release()
	if string(req.KeySpec) != spec.Name {
		return nil, validationErrorf("generate-signature request: keySpec %q does not match key %q, which is %s", req.KeySpec, keys.RedactKeyID(req.KeyID), spec.Name)
	}
	if string(req.Hash) != spec.HashName {
		return nil, validationErrorf("generate-signature request: hashAlgorithm %q is not the hash of key spec %s, which is %s", req.Hash, spec.Name, spec.HashName)
	}
	sig, err := k.SignMessage(req.Payload)
	if err != nil {
		return nil, err
	}
	return &pfw.GenerateSignatureResponse{
		KeyID:            req.KeyID,
		Signature:        sig,
		SigningAlgorithm: pfw.SignatureAlgorithm(spec.Algorithm),
		CertificateChain: rawChain(k),
	}, nil
}

func rawChain(k *keys.Key) [][]byte {
	out := make([][]byte, len(k.Chain))
	for i, c := range k.Chain {
		out[i] = c.Raw
	}
	return out
}

// PayloadType is the one payload type of the Notary Project signature
// specification.
const PayloadType = "application/vnd.cncf.notary.payload.v1+json"

// maxExpiry bounds expiryDurationInSeconds so that signing time plus expiry
// stays representable; notation's -e takes durations of hours or days.
const maxExpiry = 100 * 366 * 24 * time.Hour

func (p *Plugin) generateEnvelope(ctx context.Context, req *pfw.GenerateEnvelopeRequest) (*pfw.GenerateEnvelopeResponse, error) {
	if err := checkContract("generate-envelope", req.ContractVersion,
		"keyId", req.KeyID, "payloadType", req.PayloadType, "signatureEnvelopeType", req.SignatureEnvelopeType); err != nil {
		return nil, err
	}
	if len(req.Payload) == 0 {
		return nil, validationErrorf("generate-envelope request: payload cannot be empty")
	}
	if req.PayloadType != PayloadType {
		return nil, validationErrorf("generate-envelope request: payloadType %q is not supported: keyward signs %q payloads", req.PayloadType, PayloadType)
	}
	mediaType := req.SignatureEnvelopeType
	if mediaType != envelopeJWS && mediaType != envelopeCOSE {
		return nil, validationErrorf("generate-envelope request: signatureEnvelopeType %q is not supported: use %q (--signature-format jws) or %q (--signature-format cose)",
			mediaType, envelopeJWS, envelopeCOSE)
	}
	if err := checkPayload(req.Payload); err != nil {
		return nil, err
	}
	if req.ExpiryDurationInSeconds > uint64(maxExpiry/time.Second) {
		return nil, validationErrorf("generate-envelope request: expiryDurationInSeconds %d is more than 100 years", req.ExpiryDurationInSeconds)
	}
	expiry := time.Duration(req.ExpiryDurationInSeconds) * time.Second
	o, err := parseOptions(req.PluginConfig)
	if err != nil {
		return nil, err
	}
	timestamper, tsaRoots, tsaRevocation, err := timestamping(o)
	if err != nil {
		return nil, err
	}
	k, _, err := p.open(ctx, req.KeyID, req.PluginConfig)
	if err != nil {
		return nil, err
	}
	defer k.Release()
	env, err := buildEnvelope(k, envelopeRequest{
		mediaType:          mediaType,
		payload:            req.Payload,
		signingTime:        p.now(),
		expiry:             expiry,
		scheme:             o.scheme,
		timestamper:        timestamper,
		tsaRoots:           tsaRoots,
		tsaRevocation:      tsaRevocation,
		verificationPlugin: o.verificationPlugin,
	})
	if err != nil {
		return nil, timestampError(o, err)
	}
	return &pfw.GenerateEnvelopeResponse{SignatureEnvelope: env, SignatureEnvelopeType: mediaType}, nil
}

// checkPayload checks that the payload is a Notary Project payload: a JSON
// object whose targetArtifact descriptor has mediaType, digest and size
// (signature-specification.md "Payload"). notation compares the signed
// descriptor with the artifact it asked to sign; refusing anything else here
// keeps the plugin from signing arbitrary JSON.
func checkPayload(payload []byte) error {
	var p struct {
		TargetArtifact *struct {
			MediaType string           `json:"mediaType"`
			Digest    string           `json:"digest"`
			Size      *json.RawMessage `json:"size"`
		} `json:"targetArtifact"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return validationErrorf("generate-envelope request: payload is not a JSON %s payload: %v", PayloadType, err)
	}
	t := p.TargetArtifact
	switch {
	case t == nil:
		return validationErrorf("generate-envelope request: payload has no targetArtifact")
	case t.MediaType == "":
		return validationErrorf("generate-envelope request: payload targetArtifact has no mediaType")
	case !strings.Contains(t.Digest, ":"):
		return validationErrorf("generate-envelope request: payload targetArtifact digest %q is not an algorithm:hex digest", t.Digest)
	case t.Size == nil:
		return validationErrorf("generate-envelope request: payload targetArtifact has no size")
	}
	return nil
}
