package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keyward/keyward/keys/pkcs11key"
)

func newKeysCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "keys",
		Short: "Find the keys the notation-keyward plugin can sign with",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return c.Help()
		},
	}
	c.AddCommand(newKeysListCommand(e))
	return c
}

type keysListOptions struct {
	module    string
	token     string
	output    string
	pinSource string
	login     bool
}

func newKeysListCommand(e *env) *cobra.Command {
	var o keysListOptions
	c := &cobra.Command{
		Use:   "list --module <path> [--token <label>] [--output text|json]",
		Short: "List the tokens, keys and certificates of a PKCS#11 module, with each key's id for notation",
		Long: `List the tokens, key pairs and certificates a PKCS#11 module exposes.

Each key is printed with the PKCS#11 URI that selects it, ready to paste
into notation:

  notation sign --plugin keyward --id '<URI>' <reference>

and with its notation key spec and the subject of its certificate on the
token. Quote the URI in the shell: it contains ';', '?' and '&'.

keys list reads public objects without logging in. It logs in only when
private objects are needed: with --login (to confirm that each key has its
private key), or for a token that shows no object before login. The PIN then
comes from KEYWARD_PKCS11_PIN, from the file given with --pin-source, or
from a prompt when standard input is a terminal. The PIN is never accepted
on the command line.`,
		Example: `  keyward keys list --module /usr/lib/softhsm/libsofthsm2.so
  keyward keys list --module /usr/lib/softhsm/libsofthsm2.so --token release --output json
  KEYWARD_PKCS11_PIN=... keyward keys list --module /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so --login`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return keysList(e, o)
		},
	}
	f := c.Flags()
	f.StringVar(&o.module, "module", "", "path of the PKCS#11 module (default $"+pkcs11key.EnvModule+")")
	f.StringVar(&o.token, "token", "", "list only the token with this label")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.pinSource, "pin-source", "", "file holding the user PIN (file:/path or /path, mode 0600), used only when logging in")
	f.BoolVar(&o.login, "login", false, "log in to list private keys too")
	return c
}

func keysList(e *env, o keysListOptions) error {
	if o.output != "text" && o.output != "json" {
		return usageErrorf("--output %q is not supported: use text or json", o.output)
	}
	module := o.module
	if module == "" {
		module = e.getenv(pkcs11key.EnvModule)
		if module == "" {
			return usageErrorf("--module is required: give the path of the PKCS#11 module, e.g. --module /usr/lib/softhsm/libsofthsm2.so (or export %s)", pkcs11key.EnvModule)
		}
	}
	if !filepath.IsAbs(module) {
		abs, err := filepath.Abs(module)
		if err != nil {
			return fmt.Errorf("module path %q: %w", module, err)
		}
		module = abs
	}
	inv, err := pkcs11key.List(pkcs11key.ListOptions{
		Module: module,
		Token:  o.token,
		Login:  o.login,
		PIN:    pinPrompter(e, o.pinSource),
	})
	if err != nil {
		return err
	}
	if o.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(inventoryJSON(inv))
	}
	writeInventory(e.stdout, inv)
	return nil
}

// pinPrompter returns the PIN callback of keys list: KEYWARD_PKCS11_PIN,
// then the --pin-source file, then a prompt on the terminal.
func pinPrompter(e *env, pinSource string) func(pkcs11key.TokenInventory) (string, error) {
	return func(t pkcs11key.TokenInventory) (string, error) {
		if pin := e.getenv(pkcs11key.EnvPIN); pin != "" {
			return pin, nil
		}
		if pinSource != "" {
			return pkcs11key.ReadPIN(pinSource)
		}
		f, ok := e.stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", pkcs11key.ErrNoPIN
		}
		fmt.Fprintf(e.stderr, "User PIN of token %q (serial %s): ", t.Label, t.Serial)
		pin, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("read the PIN from the terminal: %w", err)
		}
		if len(pin) == 0 {
			return "", pkcs11key.ErrNoPIN
		}
		return string(pin), nil
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func hexOrDash(id []byte) string {
	if len(id) == 0 {
		return "-"
	}
	return hex.EncodeToString(id)
}

func writeInventory(w io.Writer, inv *pkcs11key.Inventory) {
	fmt.Fprintf(w, "Module %s (%s %s, PKCS#11 %s)\n", inv.Module, inv.Library.Description, inv.Library.Version, inv.Library.Cryptoki)
	if len(inv.Tokens) == 0 {
		fmt.Fprintln(w, "\nNo token is present.")
	}
	for _, t := range inv.Tokens {
		login := "no login required"
		if t.LoginRequired {
			login = "login required"
			if t.LoggedIn {
				login += ", logged in"
			}
		}
		fmt.Fprintf(w, "\nToken %q: %s %s, serial %s, slot-id %d, %s\n", t.Label, t.Manufacturer, t.Model, t.Serial, t.SlotID, login)
		if len(t.Keys) == 0 {
			fmt.Fprintln(w, "  No keys.")
		}
		for _, k := range t.Keys {
			spec := k.KeySpec
			if spec == "" {
				spec = k.KeyType + " (not usable with notation: " + k.Unsupported + ")"
			}
			fmt.Fprintf(w, "  Key %q  %s  id %s  private key: %s\n", k.Label, spec, hexOrDash(k.ID), k.PrivateKey)
			if k.Certificate != nil {
				fmt.Fprintf(w, "    certificate: %s (issuer %s, valid until %s)\n", k.Certificate.Subject, k.Certificate.Issuer,
					k.Certificate.NotAfter.UTC().Format(time.RFC3339))
			} else {
				fmt.Fprintf(w, "    certificate: none on the token (store one with the key's id, or set plugin config cert_chain)\n")
			}
			if k.KeySpec != "" {
				fmt.Fprintf(w, "    --id %s\n", shellQuote(k.URI))
			}
		}
		for _, c := range t.Certificates {
			kind := "leaf"
			if c.Cert.IsCA {
				kind = "CA"
			}
			fmt.Fprintf(w, "  Certificate %q  id %s  %s  %s (valid until %s)\n", c.Label, hexOrDash(c.ID), kind, c.Cert.Subject,
				c.Cert.NotAfter.UTC().Format(time.RFC3339))
		}
		for _, n := range t.Notes {
			fmt.Fprintf(w, "  Note: %s\n", n)
		}
	}
}

// The JSON form of keys list: field names are part of keyward's interface.
type (
	jsonInventory struct {
		Module  string      `json:"module"`
		Library jsonLibrary `json:"library"`
		Tokens  []jsonToken `json:"tokens"`
	}
	jsonLibrary struct {
		Manufacturer    string `json:"manufacturer"`
		Description     string `json:"description"`
		Version         string `json:"version"`
		CryptokiVersion string `json:"cryptokiVersion"`
	}
	jsonToken struct {
		Label         string     `json:"label"`
		Manufacturer  string     `json:"manufacturer"`
		Model         string     `json:"model"`
		Serial        string     `json:"serial"`
		SlotID        uint64     `json:"slotId"`
		LoginRequired bool       `json:"loginRequired"`
		LoggedIn      bool       `json:"loggedIn"`
		Keys          []jsonKey  `json:"keys"`
		Certificates  []jsonCert `json:"certificates"`
		Notes         []string   `json:"notes,omitempty"`
	}
	jsonKey struct {
		URI         string    `json:"uri"`
		Label       string    `json:"label"`
		ID          string    `json:"id"`
		KeySpec     string    `json:"keySpec,omitempty"`
		KeyType     string    `json:"keyType"`
		Unsupported string    `json:"unsupported,omitempty"`
		PrivateKey  string    `json:"privateKey"`
		Certificate *jsonCert `json:"certificate,omitempty"`
	}
	jsonCert struct {
		Label     string    `json:"label,omitempty"`
		ID        string    `json:"id,omitempty"`
		Subject   string    `json:"subject"`
		Issuer    string    `json:"issuer"`
		CA        bool      `json:"ca"`
		NotBefore time.Time `json:"notBefore"`
		NotAfter  time.Time `json:"notAfter"`
		SHA256    string    `json:"sha256"`
	}
)

func certJSON(label string, id []byte, c *x509.Certificate) *jsonCert {
	sum := sha256.Sum256(c.Raw)
	return &jsonCert{Label: label, ID: hex.EncodeToString(id), Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		CA: c.IsCA, NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:])}
}

func inventoryJSON(inv *pkcs11key.Inventory) jsonInventory {
	out := jsonInventory{
		Module: inv.Module,
		Library: jsonLibrary{Manufacturer: inv.Library.Manufacturer, Description: inv.Library.Description,
			Version: inv.Library.Version, CryptokiVersion: inv.Library.Cryptoki},
		Tokens: []jsonToken{},
	}
	for _, t := range inv.Tokens {
		jt := jsonToken{Label: t.Label, Manufacturer: t.Manufacturer, Model: t.Model, Serial: t.Serial, SlotID: t.SlotID,
			LoginRequired: t.LoginRequired, LoggedIn: t.LoggedIn, Keys: []jsonKey{}, Certificates: []jsonCert{}, Notes: t.Notes}
		for _, k := range t.Keys {
			jk := jsonKey{URI: k.URI, Label: k.Label, ID: hex.EncodeToString(k.ID), KeySpec: k.KeySpec, KeyType: k.KeyType,
				Unsupported: k.Unsupported, PrivateKey: string(k.PrivateKey)}
			if k.Certificate != nil {
				jk.Certificate = certJSON("", nil, k.Certificate)
			}
			jt.Keys = append(jt.Keys, jk)
		}
		for _, c := range t.Certificates {
			jt.Certificates = append(jt.Certificates, *certJSON(c.Label, c.ID, c.Cert))
		}
		out.Tokens = append(out.Tokens, jt)
	}
	return out
}
