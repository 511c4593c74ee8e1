package verify

import (
	"context"

	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/keyward/keyward/plugin"
)

// verificationPlugin is what the evaluation needs of a verification plugin:
// a plugin binary run through the protocol, or keyward itself in process.
type verificationPlugin interface {
	verifySignature(ctx context.Context, req *pfw.VerifySignatureRequest) (*pfw.VerifySignatureResponse, error)
}

// inProcessPlugin is keyward's own verification plugin (package plugin)
// called without a process: signatures that name keyward are judged by
// the same code the notation-keyward binary runs, so keyward verify and
// notation verify reach the same verdicts on keyward: identities.
type inProcessPlugin struct{ p *plugin.Plugin }

// inProcess returns keyward's in-process plugin when the signature names
// keyward.
func inProcess(name string) (inProcessPlugin, bool) {
	if name != plugin.Name {
		return inProcessPlugin{}, false
	}
	return inProcessPlugin{p: plugin.New(nil)}, true
}

func (i inProcessPlugin) metadata(config map[string]string) (*pfw.GetMetadataResponse, error) {
	md, err := i.p.Metadata(config)
	if err != nil {
		return nil, err
	}
	return md, nil
}

func (i inProcessPlugin) verifySignature(ctx context.Context, req *pfw.VerifySignatureRequest) (*pfw.VerifySignatureResponse, error) {
	return i.p.VerifySignature(ctx, req)
}
