package verify

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"
	"golang.org/x/mod/semver"

	"github.com/keyward/keyward/policy"
)

// The extended attributes naming a verification plugin (spec "Signature
// Specification": Verification Plugin, Verification Plugin Minimum Version).
const (
	HeaderVerificationPlugin           = "io.cncf.notary.verificationPlugin"
	HeaderVerificationPluginMinVersion = "io.cncf.notary.verificationPluginMinVersion"
)

// semverPattern is the regular expression semver.org gives for SemVer 2.0
// versions (no leading "v"); plugin versions must match it (spec "Plugin
// metadata": version).
var semverPattern = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

var errAttributeAbsent = errors.New("extended attribute not present")

// criticalString returns the string value of the critical extended
// attribute key, errAttributeAbsent when the signature has none, or
// notation's error when it is not critical or not a string.
func criticalString(si *signature.SignerInfo, key string) (string, error) {
	for _, a := range si.SignedAttributes.ExtendedAttributes {
		if k, ok := a.Key.(string); !ok || k != key {
			continue
		}
		if !a.Critical {
			return "", fmt.Errorf("%v is not a critical Extended attribute", key)
		}
		s, ok := a.Value.(string)
		if !ok {
			return "", fmt.Errorf("%v from extended attribute is not a string", key)
		}
		return s, nil
	}
	return "", errAttributeAbsent
}

// pluginDiscovery is spec "Signature Verification" step 5 (the first part
// of "Perform extended validation"): a signature naming a verification
// plugin needs that plugin installed, at least at the minimum version the
// signature asks for, with a verification capability. Every failure here
// ends the evaluation, whatever the level, as notation-go does
// (verifier.processSignature); most are inconclusive.
func (e *evaluation) pluginDiscovery() bool {
	si := &e.content.SignerInfo
	name, err := criticalString(si, HeaderVerificationPlugin)
	if errors.Is(err, errAttributeAbsent) {
		e.skip(CheckPluginDiscovery, "the signature does not name a verification plugin")
		return true
	}
	if err != nil {
		return !e.fail(CheckPluginDiscovery, err, false)
	}
	if strings.TrimSpace(name) == "" {
		return !e.fail(CheckPluginDiscovery, fmt.Errorf("%v from extended attribute is an empty string", HeaderVerificationPlugin), false)
	}
	e.res.Signer.VerificationPlugin = name
	minVersion, err := criticalString(si, HeaderVerificationPluginMinVersion)
	switch {
	case errors.Is(err, errAttributeAbsent):
		minVersion, err = "", nil
	case err != nil:
	case strings.TrimSpace(minVersion) == "":
		err = fmt.Errorf("%v from extended attribute is an empty string", HeaderVerificationPluginMinVersion)
	case !semverPattern.MatchString(minVersion):
		err = fmt.Errorf("%v from extended attribute is not a valid SemVer", HeaderVerificationPluginMinVersion)
	}
	if err != nil {
		return !e.fail(CheckPluginDiscovery, fmt.Errorf("error while getting plugin minimum version, error: %s", err), true)
	}
	e.res.Signer.VerificationPluginMinVersion = minVersion

	located := func(err error) error {
		return fmt.Errorf("error while locating the verification plugin %q, make sure the plugin is installed successfully before verifying the signature. error: %s", name, err)
	}
	var p verificationPlugin
	var md *pfw.GetMetadataResponse
	if ip, ok := e.inProcessPlugin(name); ok {
		// keyward judges its own signatures without a process (inprocess.go).
		p, e.inProcess = ip, true
		md, err = ip.metadata(e.req.PluginConfig)
	} else {
		if e.v.opts.PluginDir == "" {
			return !e.fail(CheckPluginDiscovery, located(errors.New("no plugin directory is configured")), true)
		}
		bin, lerr := locatePlugin(e.v.opts.PluginDir, name, e.v.opts.PluginTimeout)
		if lerr != nil {
			return !e.fail(CheckPluginDiscovery, located(lerr), true)
		}
		p = bin
		md, err = e.v.pluginMetadata(e.ctx, bin, e.req.PluginConfig)
	}
	if err != nil {
		return !e.fail(CheckPluginDiscovery, err, false)
	}
	if !semverPattern.MatchString(md.Version) {
		return !e.fail(CheckPluginDiscovery, fmt.Errorf("plugin %s has pluginVersion %s which is not in valid semver format", name, md.Version), true)
	}
	// Without a minimum version "v" is not valid SemVer, which
	// semver.Compare ranks below every valid version.
	if semver.Compare("v"+md.Version, "v"+minVersion) < 0 {
		return !e.fail(CheckPluginDiscovery, fmt.Errorf("found plugin %s with version %s but signature verification needs plugin version greater than or equal to %s", name, md.Version, minVersion), true)
	}
	var caps []pfw.Capability
	for _, c := range md.Capabilities {
		if c == pfw.CapabilityTrustedIdentityVerifier || c == pfw.CapabilityRevocationCheckVerifier {
			caps = append(caps, c)
		}
	}
	if len(caps) == 0 {
		return !e.fail(CheckPluginDiscovery, fmt.Errorf("digital signature requires plugin %q with signature verification capabilities (%q and/or %q) installed", name, pfw.CapabilityTrustedIdentityVerifier, pfw.CapabilityRevocationCheckVerifier), true)
	}
	e.plugin, e.pluginName, e.caps = p, name, caps
	e.pass(CheckPluginDiscovery, fmt.Sprintf("plugin %q version %s verifies %s", name, md.Version, capNames(caps)))
	return true
}

func (e *evaluation) hasCap(c pfw.Capability) bool { return slices.Contains(e.caps, c) }

func capNames(caps []pfw.Capability) string {
	s := make([]string, len(caps))
	for i, c := range caps {
		s[i] = string(c)
	}
	return strings.Join(s, " and ")
}

// metadataEntry is a cached get-plugin-metadata answer.
type metadataEntry struct {
	md  *pfw.GetMetadataResponse
	err error
}

// pluginMetadata runs get-plugin-metadata once per plugin and configuration
// in the life of the Verifier (notation runs it for every signature).
func (v *Verifier) pluginMetadata(ctx context.Context, p *pluginBinary, config map[string]string) (*pfw.GetMetadataResponse, error) {
	var key strings.Builder
	key.WriteString(p.path)
	for _, k := range sortedKeys(config) {
		fmt.Fprintf(&key, "\x00%s=%s", k, config[k])
	}
	e := v.metadata.get(ctx, key.String(), func() (metadataEntry, bool) {
		md, err := p.metadata(ctx, config)
		return metadataEntry{md, err}, !contextErr(ctx)
	})
	return e.md, e.err
}

// pluginVerification is the rest of spec step "Perform extended
// validation": the plugin's verify-signature call, built and judged as
// notation-go v1.3.2 does (verifier.executePlugin, processPluginResponse).
// REVOCATION_CHECK is not asked for when revocation is skipped; with no
// capability left the plugin is not called. Every extended attribute sent
// must come back processed; a capability without a result is
// inconclusive; a failed TRUSTED_IDENTITY is an authenticity failure and a
// failed REVOCATION_CHECK a revocation failure, each under its action.
func (e *evaluation) pluginVerification() bool {
	if e.plugin == nil {
		e.skip(CheckPluginVerification, "the signature does not name a verification plugin")
		return true
	}
	var caps []pfw.Capability
	for _, c := range e.caps {
		if c == pfw.CapabilityRevocationCheckVerifier && e.res.Check(CheckRevocation).Action == policy.ActionSkip {
			continue
		}
		caps = append(caps, c)
	}
	if len(caps) == 0 {
		e.skip(CheckPluginVerification, fmt.Sprintf("plugin %q is not called: revocation, its only capability, is skipped", e.pluginName))
		return true
	}
	req := e.verifyRequest(caps)
	resp, err := e.plugin.verifySignature(e.ctx, req)
	if err != nil {
		return !e.fail(CheckPluginVerification, withPrefix(fmt.Sprintf("failed to verify with plugin %s: ", e.pluginName), err), false)
	}
	for _, a := range nonPluginAttributes(&e.content.SignerInfo) {
		if !processed(resp.ProcessedAttributes, a.Key.(string)) {
			return !e.fail(CheckPluginVerification, fmt.Errorf("extended critical attribute %q was not processed by the verification plugin %q (all extended critical attributes must be processed by the verification plugin)", a.Key, e.pluginName), false)
		}
	}
	answered := func() {
		e.pass(CheckPluginVerification, fmt.Sprintf("plugin %q processed every extended attribute and answered for %s", e.pluginName, capNames(caps)))
	}
	for _, c := range caps {
		r := resp.VerificationResults[c]
		if r == nil {
			return !e.fail(CheckPluginVerification, fmt.Errorf("verification plugin %q failed to verify %q", e.pluginName, c), true)
		}
		var check CheckName
		var failure error
		switch c {
		case pfw.CapabilityTrustedIdentityVerifier:
			check = CheckTrustedIdentity
			failure = fmt.Errorf("trusted identify verification by plugin %q failed with reason %q", e.pluginName, r.Reason) // sic, notation's wording
		case pfw.CapabilityRevocationCheckVerifier:
			check = CheckRevocation
			failure = fmt.Errorf("revocation check by verification plugin %q failed with reason %q", e.pluginName, r.Reason)
		}
		e.current = check
		if r.Success {
			msg := fmt.Sprintf("verified by plugin %q", e.pluginName)
			if e.inProcess && r.Reason != "" {
				msg += ": " + r.Reason // which identity matched
			}
			e.pass(check, msg)
		} else if e.fail(check, failure, false) {
			answered()
			return false
		}
		e.current = CheckPluginVerification
	}
	answered()
	return true
}

// verifyRequest builds the verify-signature request as notation-go v1.3.2
// does (spec "Verify signature" request): every string-keyed extended
// attribute except the plugin's own two, critical or not, is sent as a
// critical attribute and listed as unprocessed; the expiry is always sent
// (the zero time when there is none); the authentic signing time only
// under notary.x509.signingAuthority; the trusted identities as written.
func (e *evaluation) verifyRequest(caps []pfw.Capability) *pfw.VerifySignatureRequest {
	si := &e.content.SignerInfo
	ext := make(map[string]any)
	var unprocessed []string
	for _, a := range nonPluginAttributes(si) {
		k := a.Key.(string)
		ext[k] = a.Value
		unprocessed = append(unprocessed, k)
	}
	chain := make([][]byte, len(si.CertificateChain))
	for i, c := range si.CertificateChain {
		chain[i] = c.Raw
	}
	expiry := si.SignedAttributes.Expiry
	var authentic *time.Time
	if si.SignedAttributes.SigningScheme == signature.SigningSchemeX509SigningAuthority {
		t := si.SignedAttributes.SigningTime
		authentic = &t
	}
	ids := e.st.TrustedIdentities()
	trusted := make([]string, len(ids))
	for i, id := range ids {
		trusted[i] = id.String()
	}
	return &pfw.VerifySignatureRequest{
		ContractVersion: pfw.ContractVersion,
		Signature: pfw.Signature{
			CriticalAttributes: pfw.CriticalAttributes{
				ContentType:          e.content.Payload.ContentType,
				SigningScheme:        string(si.SignedAttributes.SigningScheme),
				Expiry:               &expiry,
				AuthenticSigningTime: authentic,
				ExtendedAttributes:   ext,
			},
			UnprocessedAttributes: unprocessed,
			CertificateChain:      chain,
		},
		TrustPolicy: pfw.TrustPolicy{
			TrustedIdentities:     trusted,
			SignatureVerification: caps,
		},
		PluginConfig: e.req.PluginConfig,
	}
}

// nonPluginAttributes are the extended attributes with string keys other
// than the two naming the plugin.
func nonPluginAttributes(si *signature.SignerInfo) []signature.Attribute {
	var out []signature.Attribute
	for _, a := range si.SignedAttributes.ExtendedAttributes {
		k, ok := a.Key.(string)
		if ok && k != HeaderVerificationPlugin && k != HeaderVerificationPluginMinVersion {
			out = append(out, a)
		}
	}
	return out
}

// processed reports whether the plugin listed key as processed.
func processed(list []any, key string) bool {
	for _, v := range list {
		if s, ok := v.(string); ok && s == key {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
