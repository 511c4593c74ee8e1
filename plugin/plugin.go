// Package plugin implements keyward's side of the Notary Project plugin
// protocol, contract version 1.0 (specifications: plugin-extensibility.md).
//
// notation runs the plugin binary once per command, writes one JSON request
// on its standard input and reads one JSON response from its standard output;
// on failure the plugin exits 1 and writes {"errorCode","errorMessage"} on
// standard error. [Plugin.Run] is that exchange without the process: it reads
// the bounded request, validates it, dispatches the command and returns the
// response bytes or an [*Error] carrying a protocol error code. Keys are
// reached only through the [KeyOpener] interface.
//
// Commands: get-plugin-metadata, describe-key and generate-signature
// (capability SIGNATURE_GENERATOR.RAW: notation builds the envelope and the
// plugin signs its bytes), generate-envelope (SIGNATURE_GENERATOR.ENVELOPE:
// the plugin builds the whole JWS or COSE envelope), and verify-signature
// (SIGNATURE_VERIFIER.TRUSTED_IDENTITY and REVOCATION_CHECK: for
// signatures that name keyward as their verification plugin, notation hands
// it the trusted identities, keyward: ones included, and the revocation
// check of the signing chain).
package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/keyward/keyward/identity"
	"github.com/keyward/keyward/keys"
)

// Name is the plugin name: the binary is notation-keyward and notation finds
// it in {plugins}/keyward/. notation requires the metadata name to equal it.
const Name = "keyward"

// ContractVersion is the one plugin contract version keyward implements.
const ContractVersion = pfw.ContractVersion

// MaxRequestSize bounds the request read from standard input. notation's
// largest request is generate-signature, whose payload is the JWS signing
// input or COSE Sig_structure of a payload of a few kilobytes.
const MaxRequestSize = 8 << 20

// KeyOpener opens the key a request names. ignored lists plugin config keys
// the plugin itself consumes, so that the opener does not reject them.
type KeyOpener interface {
	// Open opens the key and checks its chain, for signing.
	Open(ctx context.Context, keyID string, cfg keys.Config, ignored ...string) (*keys.Key, error)
	// Describe returns the key's spec, for describe-key, as cheaply as
	// the backend can.
	Describe(ctx context.Context, keyID string, cfg keys.Config, ignored ...string) (keys.Spec, error)
}

// Plugin answers protocol commands.
type Plugin struct {
	keys KeyOpener
	now  func() time.Time
	// ids judges trusted identities, keeping parsed identities for the
	// life of the Plugin (keyward verify keeps one for a run).
	ids *identity.Evaluator
}

// New returns a Plugin that opens keys with opener (nil for a Plugin that
// only verifies).
func New(opener KeyOpener) *Plugin {
	return &Plugin{keys: opener, now: time.Now, ids: identity.NewEvaluator(identity.NotationDN())}
}

// WithClock returns a copy of p that takes signing times from now.
func (p *Plugin) WithClock(now func() time.Time) *Plugin {
	c := *p
	c.now = now
	return &c
}

// Commands lists the protocol commands, in the order of the specification.
var Commands = []string{
	string(pfw.CommandGetMetadata),
	string(pfw.CommandDescribeKey),
	string(pfw.CommandGenerateSignature),
	string(pfw.CommandGenerateEnvelope),
	string(pfw.CommandVerifySignature),
}

// Run executes one command with the request read from stdin and returns the
// JSON response. A failure is returned as an *Error whose code is one of the
// protocol's codes; Run never returns a response together with an error.
func (p *Plugin) Run(ctx context.Context, command string, stdin io.Reader) (response []byte, perr *Error) {
	var (
		resp any
		err  error
	)
	switch pfw.Command(command) {
	case pfw.CommandGetMetadata:
		var req pfw.GetMetadataRequest
		if err = decode(stdin, &req); err == nil {
			resp, err = p.metadata(&req)
		}
	case pfw.CommandDescribeKey:
		var req pfw.DescribeKeyRequest
		if err = decode(stdin, &req); err == nil {
			resp, err = p.describeKey(ctx, &req)
		}
	case pfw.CommandGenerateSignature:
		var req pfw.GenerateSignatureRequest
		if err = decode(stdin, &req); err == nil {
			resp, err = p.generateSignature(ctx, &req)
		}
	case pfw.CommandGenerateEnvelope:
		var req pfw.GenerateEnvelopeRequest
		if err = decode(stdin, &req); err == nil {
			resp, err = p.generateEnvelope(ctx, &req)
		}
	case pfw.CommandVerifySignature:
		var req pfw.VerifySignatureRequest
		if err = decode(stdin, &req); err == nil {
			resp, err = p.verifySignature(ctx, &req, nil)
		}
	default:
		err = validationErrorf("unknown command %q: the commands are %v", command, Commands)
	}
	if err != nil {
		return nil, toError(err)
	}
	out, err := marshal(resp)
	if err != nil {
		return nil, toError(fmt.Errorf("encode the %s response: %w", command, err))
	}
	return out, nil
}

// marshal encodes v as compact JSON without HTML escaping, so that messages
// read as written ("<path>", not "\u003cpath\u003e").
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
