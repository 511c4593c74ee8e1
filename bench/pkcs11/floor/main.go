//go:build cgo

// Command floor is the least a PKCS#11 signing process can do, the floor
// keyward's plugin commands are measured against: load the module, find the
// token and the key, optionally log in and sign one digest, finalize. It
// reads the PIN from KEYWARD_PKCS11_PIN and the request from nothing.
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"

	"github.com/miekg/pkcs11"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run() error {
	module := flag.String("module", "", "PKCS#11 module")
	token := flag.String("token", "", "token label")
	label := flag.String("label", "", "key label")
	sign := flag.Bool("sign", false, "log in and sign")
	flag.Parse()
	p := pkcs11.New(*module)
	if p == nil {
		return fmt.Errorf("cannot load %s", *module)
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		return err
	}
	defer p.Finalize()
	slots, err := p.GetSlotList(true)
	if err != nil {
		return err
	}
	for _, s := range slots {
		info, err := p.GetTokenInfo(s)
		if err != nil || info.Label != *token {
			continue
		}
		sh, err := p.OpenSession(s, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			return err
		}
		class := uint(pkcs11.CKO_PUBLIC_KEY)
		if *sign {
			if err := p.Login(sh, pkcs11.CKU_USER, os.Getenv("KEYWARD_PKCS11_PIN")); err != nil {
				return err
			}
			class = pkcs11.CKO_PRIVATE_KEY
		}
		if err := p.FindObjectsInit(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class), pkcs11.NewAttribute(pkcs11.CKA_LABEL, *label)}); err != nil {
			return err
		}
		hs, _, err := p.FindObjects(sh, 2)
		p.FindObjectsFinal(sh)
		if err != nil || len(hs) != 1 {
			return fmt.Errorf("find key %q: %d found, %v", *label, len(hs), err)
		}
		if _, err := p.GetAttributeValue(sh, hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)}); err != nil {
			return err
		}
		if *sign {
			digest := sha256.Sum256([]byte("payload"))
			if err := p.SignInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, hs[0]); err != nil {
				return err
			}
			if _, err := p.Sign(sh, digest[:]); err != nil {
				return err
			}
		}
		fmt.Println("{}")
		return p.CloseSession(sh)
	}
	return fmt.Errorf("no token %q", *token)
}
