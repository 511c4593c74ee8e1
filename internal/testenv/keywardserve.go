package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// KeywardServe is a `keyward serve` process (built from this checkout by
// [KeywardBinary]) on 127.0.0.1 over plain HTTP, stopped when the test that
// started it ends.
type KeywardServe struct {
	// URL is the base URL, http://127.0.0.1:port.
	URL string
	// Log is the file holding the process's stdout and stderr.
	Log string

	proc *Registry // the process (startProcess's handle)
}

// StartKeywardServe writes cfg (serve-config.schema.json, as JSON) with
// listen set to a free port on 127.0.0.1 and plainHTTP true, starts
// `keyward serve --config` with it and waits until GET /readyz answers 200.
// env is added to the process's environment.
func StartKeywardServe(t testing.TB, cfg map[string]any, env ...string) *KeywardServe {
	t.Helper()
	bin := KeywardBinary(t)
	dir := t.TempDir()
	logFile := filepath.Join(dir, "keyward-serve.log")
	for range startTries {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		c := make(map[string]any, len(cfg)+2)
		for k, v := range cfg {
			c[k] = v
		}
		c["listen"] = fmt.Sprintf("127.0.0.1:%d", port)
		c["plainHTTP"] = true
		data, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		conf := filepath.Join(dir, "serve.json")
		if err := os.WriteFile(conf, data, 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		proc, err := startProcess(t, []string{bin, "serve", "--config", conf}, env, logFile)
		if err != nil {
			t.Fatalf("testenv: starting keyward serve: %v", err)
		}
		k := &KeywardServe{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Log: logFile, proc: proc}
		err = k.waitReady()
		if err == nil {
			return k
		}
		proc.stop()
		if !strings.Contains(tail(logFile, 40), "address already in use") {
			t.Fatalf("testenv: starting keyward serve: %v\n--- last lines of %s:\n%s", err, logFile, tail(logFile, 40))
		}
	}
	t.Fatalf("testenv: starting keyward serve: every port tried was taken\n--- last lines of %s:\n%s", logFile, tail(logFile, 40))
	return nil
}

func (k *KeywardServe) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-k.proc.done:
			return fmt.Errorf("exited before answering: %v", k.proc.cmd.ProcessState)
		default:
		}
		resp, err := client.Get(k.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to GET /readyz within %v: %w", startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop ends the process (SIGTERM, SIGKILL after 5 s) and waits until it is
// reaped.
func (k *KeywardServe) Stop() { k.proc.stop() }

// Pid is the process id of the keyward serve process.
func (k *KeywardServe) Pid() int { return k.proc.cmd.Process.Pid }

// RSS returns the resident set size of process pid, from
// /proc/<pid>/status (VmRSS), or 0 where that cannot be read.
func RSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}
