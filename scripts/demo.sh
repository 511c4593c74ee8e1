#!/usr/bin/env bash
# make demo: sign a sample artifact in an OCI image layout on disk with the
# keyward plugin, list its signatures and verify them with notation v1.3.2.
#
# Needs bin/ (make build) and .cache/tools/bin/notation (make tools); no
# registry, no network. Everything it creates lives in one temporary folder,
# removed at the end (KEEP=1 keeps it), and notation runs with HOME,
# XDG_CONFIG_HOME and XDG_CACHE_HOME inside it, so your own notation
# configuration is never touched.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
notation=${KEYWARD_TOOLS_BIN:-$repo/.cache/tools/bin}/notation
plugin=$repo/bin/notation-keyward
keyward=$repo/bin/keyward
for f in "$notation" "$plugin" "$keyward"; do
	[ -x "$f" ] || { echo "demo: $f is missing; run make demo (it builds it)" >&2; exit 1; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/keyward-demo.XXXXXX")
cleanup() { if [ "${KEEP:-}" = 1 ]; then echo "The demo files stay in $T (remove them with: rm -rf $T)"; else rm -rf "$T"; fi; }
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

# notation sees only the demo's folders.
export HOME=$T/home XDG_CONFIG_HOME=$T/config XDG_CACHE_HOME=$T/cache NOTATION_EXPERIMENTAL=1
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME"
unset NOTATION_CONFIG NOTATION_LIBEXEC NOTATION_CACHE DOCKER_CONFIG

step "1. A throw-away certificate authority and signing key (openssl), in $T/keys"
K=$T/keys
mkdir -m 700 "$K"
subject="/C=US/ST=WA/L=Seattle/O=keyward demo"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout "$K/ca.key" \
	-out "$K/ca.crt" -days 1 -subj "$subject/CN=keyward demo CA" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/signing.key" 2>/dev/null
chmod 600 "$K/signing.key"
openssl req -new -key "$K/signing.key" -subj "$subject/CN=demo signer" -out "$K/signing.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' >"$K/leaf.ext"
openssl x509 -req -in "$K/signing.csr" -CA "$K/ca.crt" -CAkey "$K/ca.key" -CAcreateserial -days 1 \
	-extfile "$K/leaf.ext" -out "$K/signing.crt" 2>/dev/null
cat "$K/signing.crt" "$K/ca.crt" >"$K/chain.pem" # leaf first, ending with the root
echo "CA:          $(openssl x509 -in "$K/ca.crt" -noout -subject)"
echo "signing key: $K/signing.key (EC P-256, mode 600), certificate chain: $K/chain.pem"

step "2. Install the keyward plugin into notation"
show "$notation" plugin install --file "$plugin"
show "$notation" plugin ls

step "3. A sample artifact in an OCI image layout at $T/layout"
L=$T/layout
mkdir -p "$L/blobs/sha256"
blob() { # blob FILE: store FILE as a blob, print its digest
	local d
	d=$(sha256sum "$1" | cut -d' ' -f1)
	cp "$1" "$L/blobs/sha256/$d"
	echo "$d"
}
printf '{}' >"$T/config.json"
printf 'hello from the keyward demo\n' >"$T/hello.txt"
config=$(blob "$T/config.json")
layer=$(blob "$T/hello.txt")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.keyward.demo","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:%s","size":2},"layers":[{"mediaType":"text/plain","digest":"sha256:%s","size":%d}]}' \
	"$config" "$layer" "$(wc -c <"$T/hello.txt")" >"$T/manifest.json"
manifest=$(blob "$T/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
	"$manifest" "$(wc -c <"$T/manifest.json")" >"$L/index.json"
echo "artifact: $L:v1 = sha256:$manifest"

step "4. Sign it with the plugin: notation builds a JWS envelope, keyward signs its bytes (RAW mode)"
show "$notation" sign --oci-layout "$L:v1" --plugin keyward --id "file:$K/signing.key" \
	--plugin-config "cert_chain=$K/chain.pem"

step "5. Sign it again: keyward builds the whole COSE envelope itself (ENVELOPE mode)"
show "$notation" sign --oci-layout "$L:v1" --signature-format cose --plugin keyward --id "file:$K/signing.key" \
	--plugin-config "cert_chain=$K/chain.pem" --plugin-config signing_mode=envelope

step "6. The signatures stored beside the artifact"
show "$notation" ls --oci-layout "$L@sha256:$manifest"

step "7. Trust the demo CA for the demo signer: check the policy with keyward, verify with notation"
show "$notation" cert add --type ca --store keyward-demo "$K/ca.crt"
cat >"$T/trustpolicy.json" <<EOF
{
  "version": "1.0",
  "trustPolicies": [
    {
      "name": "keyward-demo",
      "registryScopes": ["local/demo"],
      "signatureVerification": {"level": "strict"},
      "trustStores": ["ca:keyward-demo"],
      "trustedIdentities": ["x509.subject: C=US, ST=WA, L=Seattle, O=keyward demo, CN=demo signer"]
    }
  ]
}
EOF
show "$keyward" policy validate --trust-store "$XDG_CONFIG_HOME/notation/truststore" "$T/trustpolicy.json"
show "$keyward" policy explain --policy "$T/trustpolicy.json" --trust-store "$XDG_CONFIG_HOME/notation/truststore" "local/demo@sha256:$manifest"
show "$notation" policy import --force "$T/trustpolicy.json"
show "$notation" verify --oci-layout --scope local/demo "$L@sha256:$manifest"

step "8. Verify with keyward: the same verdict, and every check of the signature"
show "$keyward" verify -v --policy "$T/trustpolicy.json" --trust-store "$XDG_CONFIG_HOME/notation/truststore" \
	--oci-layout --scope local/demo "$L:v1"

step "Done: the plugin signed twice with a key notation never saw; notation and keyward verified the artifact (both stop at the first signature that passes)."
