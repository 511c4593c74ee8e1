// Command testplugin is a verification plugin for the tests of package
// verify (contract 1.0, spec "Plugin Extensibility"). It is installed as
// notation-<name>; what it answers is chosen by the pluginConfig of each
// request, so that notation-go and keyward can be given the same plugin:
//
//	version=1.2.3        metadata version (default 1.0.0)
//	caps=A,B             metadata capabilities (default both verifier ones)
//	name=x               metadata name (default: the installed name)
//	identity=fail        SIGNATURE_VERIFIER.TRUSTED_IDENTITY fails
//	revocation=fail      SIGNATURE_VERIFIER.REVOCATION_CHECK fails
//	omit=CAP             leave CAP out of verificationResults
//	processed=none       report no attribute as processed
//	fail=COMMAND         COMMAND exits 1 with an error on stderr
//	garbage=COMMAND      COMMAND writes something that is not JSON
//	record=DIR           write each request to DIR/<command>-<n>.json
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

const (
	capIdentity   = "SIGNATURE_VERIFIER.TRUSTED_IDENTITY"
	capRevocation = "SIGNATURE_VERIFIER.REVOCATION_CHECK"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) != 2 {
		return fail("VALIDATION_ERROR", "expected one command")
	}
	cmd := os.Args[1]
	in, err := io.ReadAll(io.LimitReader(os.Stdin, 16<<20))
	if err != nil {
		return fail("ERROR", err.Error())
	}
	var req struct {
		PluginConfig map[string]string `json:"pluginConfig"`
		Signature    struct {
			UnprocessedAttributes []string `json:"unprocessedAttributes"`
		} `json:"signature"`
		TrustPolicy struct {
			SignatureVerification []string `json:"signatureVerification"`
		} `json:"trustPolicy"`
	}
	if err := json.Unmarshal(in, &req); err != nil {
		return fail("VALIDATION_ERROR", "Input is not a valid JSON")
	}
	cfg := req.PluginConfig
	if dir := cfg["record"]; dir != "" {
		entries, _ := os.ReadDir(dir)
		name := filepath.Join(dir, fmt.Sprintf("%s-%d.json", cmd, len(entries)))
		if err := os.WriteFile(name, in, 0o600); err != nil {
			return fail("ERROR", err.Error())
		}
	}
	if cfg["fail"] == cmd {
		return fail("ERROR", "test plugin fails "+cmd)
	}
	if cfg["garbage"] == cmd {
		fmt.Print("this is not JSON")
		return 0
	}
	switch cmd {
	case "get-plugin-metadata":
		name := strings.TrimPrefix(filepath.Base(os.Args[0]), "notation-")
		if cfg["name"] != "" {
			name = cfg["name"]
		}
		version := "1.0.0"
		if cfg["version"] != "" {
			version = cfg["version"]
		}
		caps := []string{capIdentity, capRevocation}
		if cfg["caps"] != "" {
			caps = strings.Split(cfg["caps"], ",")
		}
		return reply(map[string]any{
			"name": name, "description": "verify package test plugin", "version": version,
			"url": "https://example.invalid/testplugin", "supportedContractVersions": []string{"1.0"},
			"capabilities": caps,
		})
	case "verify-signature":
		results := map[string]any{}
		for _, c := range req.TrustPolicy.SignatureVerification {
			if c == cfg["omit"] {
				continue
			}
			ok := true
			switch {
			case c == capIdentity && cfg["identity"] == "fail":
				ok = false
			case c == capRevocation && cfg["revocation"] == "fail":
				ok = false
			}
			r := map[string]any{"success": ok}
			if !ok {
				r["reason"] = "rejected by the test plugin"
			}
			results[c] = r
		}
		processed := req.Signature.UnprocessedAttributes
		if cfg["processed"] == "none" || processed == nil {
			processed = []string{}
		}
		return reply(map[string]any{"verificationResults": results, "processedAttributes": processed})
	}
	return fail("VALIDATION_ERROR", cmd+" is not supported")
}

func reply(v any) int {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		return fail("ERROR", err.Error())
	}
	return 0
}

func fail(code, msg string) int {
	_ = json.NewEncoder(os.Stderr).Encode(map[string]string{"errorCode": code, "errorMessage": msg})
	return 1
}
