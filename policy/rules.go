package policy

// Rule identifiers, as found in Problem.Rule.
const (
	// JSON and size.
	RuleJSONSyntax   = "json-syntax"
	RuleDuplicateKey = "json-duplicate-key"
	RuleTooLarge     = "document-too-large"

	// Schema keywords that no semantic rule explains better.
	RuleUnknownProperty    = "schema-unknown-property"
	RuleSchemaPropertyName = "schema-property-name"
	RuleSchemaRequired     = "schema-required"
	RuleSchemaType         = "schema-type"
	RuleSchemaEnum         = "schema-enum"
	RuleSchemaPattern      = "schema-pattern"
	RuleSchemaInternal     = "schema-internal"

	// Document rules.
	RuleVersionMissing     = "version-missing"
	RuleVersionUnsupported = "version-unsupported"
	RuleStatementsMissing  = "statements-missing"
	RuleNameMissing        = "statement-name-missing"
	RuleNameDuplicate      = "statement-name-duplicate"

	// signatureVerification.
	RuleLevelMissing      = "level-missing"
	RuleLevelInvalid      = "level-invalid"
	RuleOverrideOnSkip    = "override-on-skip"
	RuleOverrideCheck     = "override-check-unsupported"
	RuleOverrideAction    = "override-action-unsupported"
	RuleOverrideIntegrity = "override-integrity"
	RuleOverrideSkip      = "override-skip-not-allowed"
	RuleVerifyTimestamp   = "verify-timestamp-invalid"

	// Trust stores and identities.
	RuleSkipWithTrust         = "skip-with-trust"
	RuleTrustMissing          = "trust-missing"
	RuleStoreMalformed        = "trust-store-malformed"
	RuleStoreType             = "trust-store-type"
	RuleStoreName             = "trust-store-name"
	RuleIdentityWildcardMixed = "identity-wildcard-mixed"
	RuleIdentityEmpty         = "identity-empty"
	RuleIdentitySeparator     = "identity-separator"
	RuleIdentityX509Empty     = "identity-x509-empty"
	RuleIdentityDN            = "identity-dn-invalid"
	RuleIdentityOverlap       = "identity-overlap"

	// Registry scopes (OCI documents).
	RuleScopesMissing      = "scopes-missing"
	RuleScopeWildcardMixed = "scope-wildcard-mixed"
	RuleScopeWildcardChars = "scope-wildcard-chars"
	RuleScopeInvalid       = "scope-invalid"
	RuleScopeDuplicate     = "scope-duplicate"

	// Blob documents.
	RuleGlobalDuplicate = "global-policy-duplicate"
	RuleGlobalSkip      = "global-policy-skip"

	// Trust stores on disk (validate --trust-store).
	RuleStoreUnusable = "trust-store-unusable"
)

// RuleInfo describes a validation rule.
type RuleInfo struct {
	ID string `json:"id"`
	// Source says whose rule it is: "notation-go v1.3.2" (notation rejects
	// the document too, with the same message), "notation-go main" (the
	// unreleased blob policy), "specification" (notation accepts what the
	// spec forbids), or "keyward" (keyward is stricter than notation).
	Source  string `json:"source"`
	Summary string `json:"summary"`
}

// Rules lists every validation rule, in the order of the documentation.
func Rules() []RuleInfo {
	const n132, nMain, spec, kw = "notation-go v1.3.2", "notation-go main", "specification", "keyward"
	return []RuleInfo{
		{RuleJSONSyntax, n132, "the document is not JSON"},
		{RuleDuplicateKey, kw, "an object repeats a key (notation keeps the last silently)"},
		{RuleTooLarge, kw, "the document is larger than MaxDocumentSize"},
		{RuleUnknownProperty, kw, "a property the format does not define (notation ignores it)"},
		{RuleSchemaPropertyName, n132, "an override key that is not a check"},
		{RuleSchemaRequired, n132, "a required property is missing"},
		{RuleSchemaType, n132, "a value of the wrong JSON type (null included: keyward rejects null where notation reads it as absent)"},
		{RuleSchemaEnum, n132, "a value outside its enumeration"},
		{RuleSchemaPattern, n132, "a string without the required format"},
		{RuleVersionMissing, n132, "version is missing or empty"},
		{RuleVersionUnsupported, n132, "version is not 1.0"},
		{RuleStatementsMissing, n132, "trustPolicies is missing or empty"},
		{RuleNameMissing, n132, "a statement has no name"},
		{RuleNameDuplicate, n132, "two statements have the same name"},
		{RuleLevelMissing, n132, "signatureVerification.level is missing or empty"},
		{RuleLevelInvalid, n132, "the level is not strict, permissive, audit or skip"},
		{RuleOverrideOnSkip, n132, "a skip level has overrides"},
		{RuleOverrideCheck, n132, "an override names an unknown check"},
		{RuleOverrideAction, n132, "an override names an unknown action"},
		{RuleOverrideIntegrity, n132, "integrity is overridden"},
		{RuleOverrideSkip, n132, "a check other than revocation is overridden to skip"},
		{RuleVerifyTimestamp, n132, "verifyTimestamp is not always or afterCertExpiry"},
		{RuleSkipWithTrust, n132, "a skip statement lists trust stores or trusted identities"},
		{RuleTrustMissing, n132, "a verifying statement lacks trust stores or trusted identities"},
		{RuleStoreMalformed, n132, "a trust store value has no ':'"},
		{RuleStoreType, n132, "a trust store type is not ca, signingAuthority or tsa"},
		{RuleStoreName, n132, "a trust store name is not [a-zA-Z0-9_.-]+"},
		{RuleIdentityWildcardMixed, n132, "\"*\" is listed with other trusted identities"},
		{RuleIdentityEmpty, n132, "a trusted identity is empty"},
		{RuleIdentitySeparator, n132, "a trusted identity has no ':'"},
		{RuleIdentityX509Empty, n132, "an x509.subject identity has no value"},
		{RuleIdentityDN, n132, "an x509.subject DN does not parse, repeats or lacks C, ST or O"},
		{RuleIdentityKeyward, kw, "a keyward: identity has an unknown key, a bad value or pattern, or a pattern without oidc.issuer"},
		{RuleIdentityOverlap, n132, "one x509.subject identity is a subset of another"},
		{RuleScopesMissing, n132, "a statement has no registry scopes"},
		{RuleScopeWildcardMixed, n132, "\"*\" is listed with other registry scopes"},
		{RuleScopeWildcardChars, n132, "a registry scope contains '*'"},
		{RuleScopeInvalid, n132, "a registry scope is not host[:port]/lowercase-repository"},
		{RuleScopeDuplicate, n132, "a registry scope appears twice"},
		{RuleGlobalDuplicate, nMain, "two blob statements set globalPolicy"},
		{RuleGlobalSkip, spec, "the global blob statement has level skip"},
		{RuleStoreUnusable, n132, "a referenced trust store is missing or unusable (validate --trust-store)"},
	}
}
