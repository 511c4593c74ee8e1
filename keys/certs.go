package keys

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// maxChainFileSize bounds a certificate bundle file.
const maxChainFileSize = 4 << 20

// ReadChain reads a PEM certificate bundle, in file order.
func ReadChain(path string) ([]*x509.Certificate, error) {
	what := ConfigCertChain + " file"
	data, err := ReadFile(what, path, maxChainFileSize, false)
	if err != nil {
		return nil, err
	}
	return ParseCertificatesPEM(data, fmt.Sprintf("%s %q", what, path))
}

// ParseCertificatesPEM parses the CERTIFICATE blocks of a PEM bundle, refusing
// any other block (a private key in a certificate file is a leak waiting to
// happen). source names the bundle in messages.
func ParseCertificatesPEM(data []byte, source string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, Invalidf("%s holds a private key: keep the key in its own file with mode 0600 and only certificates in the chain", source)
			}
			return nil, Invalidf("%s holds a PEM block of type %q: it must hold only CERTIFICATE blocks", source, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, Invalidf("certificate #%d in %s does not parse: %v", len(certs)+1, source, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, Invalidf("%s holds no PEM certificate: it must hold PEM CERTIFICATE blocks, leaf first, ending with the root", source)
	}
	return certs, nil
}
