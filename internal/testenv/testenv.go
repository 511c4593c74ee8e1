// Package testenv runs the real components keyward's end-to-end tests and
// benchmarks stand on: the notation CLI v1.3.2 in an isolated configuration,
// OCI registry processes on 127.0.0.1 (olareg with the OCI 1.1 referrers
// API, distribution without it), OCI image layouts on disk, SoftHSM2 tokens,
// and the keyward binaries built from this checkout.
//
// It is a test helper library: import it only from _test.go files. The
// tools come from scripts/tools.sh (`make tools`), which builds them into
// .cache/tools/bin. A component that cannot run is reported by [Missing]:
// the test is skipped, saying why, or fails when CI=true, so that CI never
// reports a skipped check as a pass.
//
// Every process a helper starts is stopped by t.Cleanup, also when the test
// fails, and on Linux it also dies with the test binary.
package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ModulePath is the module whose root [RepoRoot] finds.
const ModulePath = "github.com/keyward/keyward"

// ToolsBinEnv names the environment variable that points at the directory
// of the tools built by scripts/tools.sh. The Makefile sets it.
const ToolsBinEnv = "KEYWARD_TOOLS_BIN"

// InCI reports whether CI=true (or another true value of strconv.ParseBool)
// is set, the mode in which a missing component fails a test.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Missing reports a component that cannot run: t.Fatalf under CI=true,
// t.Skipf otherwise. The message should say what is missing and how to get
// it.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		t.Fatalf("missing component (CI=true, so this fails): %s", msg)
		return
	}
	t.Skipf("missing component, skipping: %s", msg)
}

// ToolsDir returns the directory of the tools built by scripts/tools.sh:
// $KEYWARD_TOOLS_BIN, or <repo root>/.cache/tools/bin.
func ToolsDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(ToolsBinEnv); dir != "" {
		return dir
	}
	return filepath.Join(RepoRoot(t), ".cache", "tools", "bin")
}

// Tool returns the path of a tool built by scripts/tools.sh ("notation",
// "olareg", "registry", "staticcheck"). When it is not there, it reports it
// with [Missing].
func Tool(t testing.TB, name string) string {
	t.Helper()
	dir := ToolsDir(t)
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		Missing(t, "tool %q is not in %s; run `make tools` (scripts/tools.sh builds it)", name, dir)
		return ""
	}
	return path
}

var repoRoot struct {
	once sync.Once
	dir  string
	err  error
}

// RepoRoot returns the root of the keyward module: the nearest directory,
// from the working directory (a test's package directory) upwards, whose
// go.mod declares module github.com/keyward/keyward.
func RepoRoot(t testing.TB) string {
	t.Helper()
	repoRoot.once.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			repoRoot.err = err
			return
		}
		repoRoot.dir, repoRoot.err = findModuleRoot(wd, ModulePath)
	})
	if repoRoot.err != nil {
		t.Fatalf("testenv: %v", repoRoot.err)
	}
	return repoRoot.dir
}

// findModuleRoot walks up from dir to the directory whose go.mod declares
// module.
func findModuleRoot(dir, module string) (string, error) {
	for d := dir; ; {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && modulePath(data) == module {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod for module %s in %s or any parent directory", module, dir)
		}
		d = parent
	}
}

// modulePath returns the path in the module directive of a go.mod file.
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			if i := strings.Index(rest, "//"); i >= 0 {
				rest = rest[:i]
			}
			return strings.Trim(strings.TrimSpace(rest), `"`+"`")
		}
	}
	return ""
}

// binary is one of the keyward commands, built at most once per process.
type binary struct {
	once sync.Once
	path string
	err  error
}

var (
	pluginBinary  binary
	keywardBinary binary
)

// PluginBinary builds ./cmd/notation-keyward once per test binary and
// returns its path. The file lives in a per-process directory under
// os.TempDir that [Cleanup] removes; a later test process removes it too if
// this one could not.
func PluginBinary(t testing.TB) string {
	t.Helper()
	return pluginBinary.get(t, "notation-keyward")
}

// KeywardBinary builds ./cmd/keyward once per test binary and returns its
// path, like [PluginBinary].
func KeywardBinary(t testing.TB) string {
	t.Helper()
	return keywardBinary.get(t, "keyward")
}

func (b *binary) get(t testing.TB, name string) string {
	t.Helper()
	root := RepoRoot(t)
	b.once.Do(func() { b.path, b.err = buildCommand(root, name) })
	if b.err != nil {
		t.Fatalf("testenv: building ./cmd/%s: %v", name, b.err)
	}
	return b.path
}

func buildCommand(root, name string) (string, error) {
	// go test puts the go command of its own toolchain first on PATH.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	dir, err := processDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command(goCmd, "build", "-o", out, "./cmd/"+name)
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, msg)
	}
	return out, nil
}

const processDirPrefix = "keyward-testenv-"

var procDir struct {
	mu  sync.Mutex
	dir string
}

// processDir returns this process's scratch directory under os.TempDir,
// named keyward-testenv-<pid>-<random>, creating it on first use. Creating
// it also removes the directories of processes that no longer run.
func processDir() (string, error) {
	procDir.mu.Lock()
	defer procDir.mu.Unlock()
	if procDir.dir != "" {
		return procDir.dir, nil
	}
	removeStaleDirs()
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", processDirPrefix, os.Getpid()))
	if err != nil {
		return "", err
	}
	procDir.dir = dir
	return dir, nil
}

// removeStaleDirs removes the scratch directories of earlier test processes
// that have exited.
func removeStaleDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), processDirPrefix+"*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), processDirPrefix)
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		os.RemoveAll(m)
	}
}

// Cleanup removes the binaries [PluginBinary] and [KeywardBinary] built in
// this process. Call it from TestMain after m.Run, if at all: without it
// the next test process removes them.
func Cleanup() {
	procDir.mu.Lock()
	defer procDir.mu.Unlock()
	if procDir.dir != "" {
		os.RemoveAll(procDir.dir)
		procDir.dir = ""
	}
	pluginBinary = binary{}
	keywardBinary = binary{}
}
