package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"
)

// pluginBinary is an installed plugin executable, run the way notation-go
// v1.3.2 runs plugins (plugin/plugin.go): argv is [path, command], the
// request JSON is on stdin, the response JSON on stdout; on failure the
// plugin exits non-zero and writes {"errorCode","errorMessage"} to stderr
// (spec "Plugin Extensibility": error handling). The environment and the
// working directory are the caller's. stdout and stderr are bounded by
// MaxPluginOutput.
type pluginBinary struct {
	name    string
	path    string
	timeout time.Duration
}

// locatePlugin finds the executable of the plugin name in dir
// ({NOTATION_LIBEXEC}/plugins/<name>/notation-<name>, spec "Plugin
// installation"). The name comes from the signature, which at this point is
// only known to be intact, not trusted: unlike notation, keyward refuses a
// name that is not a single path element, so that a signature cannot make
// it run a program outside the plugin directory.
func locatePlugin(dir, name string, timeout time.Duration) (*pluginBinary, error) {
	if !safePluginName(name) {
		return nil, fmt.Errorf("plugin name %q is not a valid file name (keyward refuses path separators and dot names)", name)
	}
	bin := pfw.BinaryPrefix + name
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	p := filepath.Join(dir, name, bin)
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("plugin executable file is either not found or inaccessible: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("plugin executable file is not a regular file")
	}
	return &pluginBinary{name: name, path: p, timeout: timeout}, nil
}

// safePluginName reports whether name can be joined to the plugin
// directory without leaving it.
func safePluginName(name string) bool {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return false
	}
	return filepath.Base(name) == name && !filepath.IsAbs(name) && filepath.VolumeName(name) == ""
}

// pluginRequest is a request of the plugin protocol.
type pluginRequest interface {
	Command() pfw.Command
}

// run executes one command with messages notation-go gives for each way it
// fails.
func (p *pluginBinary) run(ctx context.Context, req pluginRequest, resp any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("failed to marshal request object: %w", err)
	}
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	command := string(req.Command())
	var stdout, stderr boundedBuffer
	cmd := exec.CommandContext(ctx, p.path, command)
	cmd.Stdin = bytes.NewReader(data)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// When the context ends the plugin is killed; a child it left holding
	// stdout must not keep keyward waiting.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("'%s %s' command execution timeout: %w", p.path, command, err)
		}
		if stderr.Len() == 0 {
			return err
		}
		return pluginStderrError(stderr.Bytes())
	}
	if stdout.overflow {
		return fmt.Errorf("the response of %s command for plugin %s is larger than %d bytes", command, p.name, MaxPluginOutput)
	}
	if err := json.Unmarshal(stdout.Bytes(), resp); err != nil {
		return &notationError{msg: fmt.Sprintf("failed to unmarshal the response of %s command for plugin %s", command, p.name), cause: err}
	}
	return nil
}

// pluginStderrError reads the error a failed plugin wrote: its
// errorMessage, as notation reports it; stderr that is not an error
// object is reported as malformed.
func pluginStderrError(stderr []byte) error {
	var e pfw.Error
	if err := json.Unmarshal(stderr, &e); err != nil {
		return &notationError{msg: err.Error(), cause: fmt.Errorf("plugin wrote to stderr: %q", truncate(stderr, 512))}
	}
	if e.ErrCode == "" && e.Message == "" && e.Metadata == nil {
		return &notationError{msg: "incomplete json", cause: fmt.Errorf("plugin wrote to stderr: %q", truncate(stderr, 512))}
	}
	if e.Message == "" {
		// notation-go prints the missing message this way
		// (proto.RequestError with a nil Err).
		return &pluginError{code: e.ErrCode, msg: "<nil>"}
	}
	return &pluginError{code: e.ErrCode, msg: e.Message}
}

// metadata runs get-plugin-metadata and checks the answer as notation-go
// does (plugin.CLIPlugin.GetMetadata): every required field present,
// contract 1.0 supported, and the name equal to the installed name.
func (p *pluginBinary) metadata(ctx context.Context, config map[string]string) (*pfw.GetMetadataResponse, error) {
	var md pfw.GetMetadataResponse
	if err := p.run(ctx, &pfw.GetMetadataRequest{PluginConfig: config}, &md); err != nil {
		return nil, err
	}
	if err := validateMetadata(&md); err != nil {
		return nil, fmt.Errorf("metadata validation failed for plugin %s: %s", p.name, err)
	}
	if md.Name != p.name {
		return nil, fmt.Errorf("plugin executable file name must be %q instead of %q", pfw.BinaryPrefix+md.Name, filepath.Base(p.path))
	}
	return &md, nil
}

func validateMetadata(md *pfw.GetMetadataResponse) error {
	switch {
	case md.Name == "":
		return errors.New("empty name")
	case md.Description == "":
		return errors.New("empty description")
	case md.Version == "":
		return errors.New("empty version")
	case md.URL == "":
		return errors.New("empty url")
	case len(md.Capabilities) == 0:
		return errors.New("empty capabilities")
	case len(md.SupportedContractVersions) == 0:
		return errors.New("supported contract versions not specified")
	case !slices.Contains(md.SupportedContractVersions, pfw.ContractVersion):
		return fmt.Errorf("contract version %q is not in the list of the plugin supported versions %v", pfw.ContractVersion, md.SupportedContractVersions)
	}
	return nil
}

// verifySignature runs verify-signature.
func (p *pluginBinary) verifySignature(ctx context.Context, req *pfw.VerifySignatureRequest) (*pfw.VerifySignatureResponse, error) {
	var resp pfw.VerifySignatureResponse
	if err := p.run(ctx, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// boundedBuffer keeps at most MaxPluginOutput bytes and then refuses more,
// which makes the plugin's write fail and the command end in error.
type boundedBuffer struct {
	bytes.Buffer
	overflow bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	room := MaxPluginOutput - b.Len()
	if len(p) > room {
		b.overflow = true
		b.Buffer.Write(p[:room])
		return room, fmt.Errorf("plugin output exceeds %d bytes", MaxPluginOutput)
	}
	return b.Buffer.Write(p)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
