package registryauth

import (
	"encoding/json"
	"fmt"

	"oras.land/oras-go/v2/registry/remote/auth"
)

// Auths are registry credentials by registry host, as the "auths" of a
// docker config file hold them; Kubernetes image pull secrets hold the
// same (kubernetes.io/dockerconfigjson: a config.json; the older
// kubernetes.io/dockercfg: its "auths" object alone). An Auths is never
// changed once parsed.
type Auths struct {
	creds map[string]auth.Credential
}

// ParseAuths decodes data, a docker config file, or with legacy the
// .dockercfg form (the map of auths alone), at most MaxConfigFile bytes.
// Keys are matched by host as the docker CLI matches them (a scheme and a
// path are ignored; Docker Hub's aliases are one host). Credential
// helpers named in data are ignored: a pull secret cannot run programs.
// Errors name source and the field at fault, never a credential.
func ParseAuths(data []byte, source string, legacy bool) (*Auths, error) {
	if len(data) > MaxConfigFile {
		return nil, &ConfigError{Path: source, Msg: fmt.Sprintf("larger than %d bytes", MaxConfigFile)}
	}
	var entries map[string]authEntry
	if legacy {
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, &ConfigError{Path: source, Msg: "is not a JSON object of registry credentials (.dockercfg)", Err: err}
		}
	} else {
		var c struct {
			Auths map[string]authEntry `json:"auths"`
		}
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, &ConfigError{Path: source, Msg: `is not a docker config JSON object {"auths": {...}} (.dockerconfigjson)`, Err: err}
		}
		entries = c.Auths
	}
	creds, err := decodeAuths(source, entries)
	if err != nil {
		return nil, err
	}
	return &Auths{creds: creds}, nil
}

// Credential returns the credential of a registry host (host[:port]).
func (a *Auths) Credential(host string) (auth.Credential, bool) {
	if a == nil {
		return auth.EmptyCredential, false
	}
	c, ok := a.creds[normalize(host)]
	return c, ok
}

// Len is the number of registries with a credential.
func (a *Auths) Len() int {
	if a == nil {
		return 0
	}
	return len(a.creds)
}
