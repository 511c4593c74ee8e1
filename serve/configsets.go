package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/internal/jsonpos"
)

// checkPolicySets checks what the schema cannot say about policySets:
// unique names, a namespace in one set only, namespace names and label
// selectors valid as Kubernetes has them.
func checkPolicySets(sets []NamedPolicySet, add func(ptr, msg, fix string)) {
	names := map[string]int{}
	listed := map[string]string{} // namespace -> the set listing it
	for i, s := range sets {
		ptr := "/policySets/" + strconv.Itoa(i)
		switch first, dup := names[s.Name]; {
		case s.Name == DefaultSetName:
			add(ptr+"/name", fmt.Sprintf("%q is the name of the default policy set (policy)", s.Name), "give the set another name")
		case dup:
			add(ptr+"/name", fmt.Sprintf("the name %q is already the name of /policySets/%d", s.Name, first), "give each policy set its own name")
		default:
			names[s.Name] = i
		}
		if len(s.Namespaces) == 0 && s.NamespaceSelector == nil {
			add(ptr, fmt.Sprintf("policy set %q names no namespace", s.Name),
				"give namespaces: [...], a namespaceSelector, or both; requests of other namespaces use the default policy")
		}
		for j, ns := range s.Namespaces {
			nptr := ptr + "/namespaces/" + strconv.Itoa(j)
			if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
				add(nptr, fmt.Sprintf("%q is not a namespace name: %s", ns, strings.Join(errs, "; ")), "write the name of a namespace, as kubectl get namespaces prints it")
				continue
			}
			if other, ok := listed[ns]; ok {
				add(nptr, fmt.Sprintf("namespace %q is already listed by policy set %q, which comes first and wins", ns, other),
					"list each namespace in one policy set")
				continue
			}
			listed[ns] = s.Name
		}
		if sel := s.NamespaceSelector; sel != nil {
			checkSelector(sel, ptr+"/namespaceSelector", add)
		}
	}
}

// checkSelector checks each part of a label selector on its own, so that a
// problem names the entry at fault.
func checkSelector(sel *LabelSelector, ptr string, add func(ptr, msg, fix string)) {
	fix := "see Kubernetes' label selectors: keys are [prefix/]name (name: up to 63 characters of alphanumerics, '-', '_', '.'), values up to 63 such characters"
	for k, v := range sel.MatchLabels {
		if _, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: map[string]string{k: v}}); err != nil {
			add(jsonpos.Join(ptr+"/matchLabels", k), err.Error(), fix)
		}
	}
	for i, r := range sel.MatchExpressions {
		one := &LabelSelector{MatchExpressions: []LabelSelectorRequirement{r}}
		if _, err := one.Selector(); err != nil {
			f := fix
			switch r.Operator {
			case "In", "NotIn":
				f = r.Operator + " needs at least one value: give values: [...]"
			case "Exists", "DoesNotExist":
				f = r.Operator + " takes no values: remove values"
			}
			add(ptr+"/matchExpressions/"+strconv.Itoa(i), err.Error(), f)
		}
	}
}

// checkCredentials checks registry.credentials: registries named as
// host[:port], once each, and a password file that can be read. The
// password itself is not kept: it is read when used.
func checkCredentials(creds []RegistryCredential, add func(ptr, msg, fix string)) {
	seen := map[string]int{}
	for i, c := range creds {
		ptr := "/registry/credentials/" + strconv.Itoa(i)
		if err := checkRegistryHost(c.Registry); err != nil {
			add(ptr+"/registry", fmt.Sprintf("%q %v", c.Registry, err), "write the registry as references name it: host or host:port, without scheme or path")
		} else if first, dup := seen[c.Registry]; dup {
			add(ptr+"/registry", fmt.Sprintf("registry %q already has a credential at /registry/credentials/%d", c.Registry, first), "give each registry one credential")
		} else {
			seen[c.Registry] = i
		}
		if _, err := readPassword(c.PasswordFile); err != nil {
			add(ptr+"/passwordFile", err.Error(), "give a readable regular file holding the password (e.g. a mounted Secret key)")
		}
	}
}

// checkRegistryHost accepts host or host:port.
func checkRegistryHost(h string) error {
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/@ \t?#") {
		return errors.New("is not host[:port]")
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if host == "" {
			return errors.New("has no host")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("has no valid port")
		}
	} else if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		return errors.New("is not host[:port]")
	}
	return nil
}

// readPassword reads a password file, bounded, without a trailing newline.
// Its errors never hold the file's content.
func readPassword(path string) (string, error) {
	data, err := bounded.ReadFile(path, MaxPasswordFile, "password file "+path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("password file %s does not exist", path)
		}
		return "", fmt.Errorf("password file: %w", err)
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("password file %s is empty", path)
	}
	return pw, nil
}
