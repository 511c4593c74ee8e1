package deploy

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/keyward/keyward/serve"
)

// The routes of keyward serve the manifests point at (serve's Handler
// serves them; TestRoutesServed checks).
const (
	validatePath   = "/v1/admission/validate"
	mutatePath     = "/v1/admission/mutate"
	gatekeeperPath = "/v1/gatekeeper/verify"
	configPath     = "/etc/keyward/serve.yaml"
)

// mustExclude are the namespaces the issue says the webhooks never see
// besides keyward's own.
var mustExclude = []string{"kube-system"}

// The resources every webhook must cover (issue 12, point 2), by API group.
var wantResources = map[string][]string{
	"":      {"pods", "pods/ephemeralcontainers", "replicationcontrollers"},
	"apps":  {"deployments", "statefulsets", "daemonsets", "replicasets"},
	"batch": {"jobs", "cronjobs"},
}

// configSummary is what the checks read of serve.yaml. It is decoded
// leniently, so that these checks do not depend on the fields other parts
// of serve add; TestServeConfigParses validates the whole file with
// serve.ParseConfig.
type configSummary struct {
	Listen    string           `json:"listen"`
	TLS       *serve.TLSConfig `json:"tls"`
	PlainHTTP bool             `json:"plainHTTP"`
	Policy    serve.PolicySet  `json:"policy"`
	Timeouts  struct {
		Request string `json:"request"`
	} `json:"timeouts"`
	// RequestTimeout is timeouts.request, or serve's default.
	RequestTimeout time.Duration `json:"-"`
}

func summarize(configYAML string) (*configSummary, error) {
	var c configSummary
	if err := yaml.Unmarshal([]byte(configYAML), &c); err != nil {
		return nil, err
	}
	c.RequestTimeout = serve.DefaultRequestTimeout
	if c.Timeouts.Request != "" {
		d, err := time.ParseDuration(c.Timeouts.Request)
		if err != nil {
			return nil, fmt.Errorf("timeouts.request: %w", err)
		}
		c.RequestTimeout = d
	}
	return &c, nil
}

// install is what checkInstall found, for further checks.
type install struct {
	deployment *appsv1.Deployment
	container  *corev1.Container
	config     *configSummary
	configYAML string
	service    *corev1.Service
	// mounts maps a mount path to its volume.
	mounts map[string]*corev1.Volume
}

// checkInstall checks the invariants issue 12 (point 9) and
// docs/serve.md promise of one installation of keyward in namespace ns.
func checkInstall(s *set, ns string) (*install, []string) {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	in := &install{mounts: map[string]*corev1.Volume{}}

	d := one[appsv1.Deployment](s, "Deployment", &p)
	if d == nil {
		return in, p
	}
	in.deployment = d
	if d.Namespace != ns {
		bad("Deployment %s is in namespace %q, want %q", d.Name, d.Namespace, ns)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		bad("Deployment replicas = %v, want 2", d.Spec.Replicas)
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		bad("Deployment selector %v does not select its pod labels %v (%v)", d.Spec.Selector, podLabels, err)
	}
	pod := &d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		bad("want one container, have %d", len(pod.Containers))
		return in, p
	}
	c := &pod.Containers[0]
	in.container = c
	if !strings.HasPrefix(c.Image, "ghcr.io/keyward/keyward:") && !strings.HasPrefix(c.Image, "ghcr.io/keyward/keyward@") {
		bad("image %q is not ghcr.io/keyward/keyward", c.Image)
	}
	if want := []string{"serve", "--config", configPath}; !slices.Equal(c.Args, want) || len(c.Command) != 0 {
		bad("command %v args %v, want the image's entrypoint with args %v", c.Command, c.Args, want)
	}
	var httpsPort *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "https" {
			httpsPort = &c.Ports[i]
		}
	}
	if httpsPort == nil || httpsPort.ContainerPort != 8443 {
		bad("no container port https = 8443: %v", c.Ports)
	}
	probe := func(name string, pr *corev1.Probe, wantPath string) {
		switch {
		case pr == nil || pr.HTTPGet == nil:
			bad("%s probe missing or not httpGet", name)
		case pr.HTTPGet.Path != wantPath || pr.HTTPGet.Scheme != corev1.URISchemeHTTPS || pr.HTTPGet.Port.String() != "https":
			bad("%s probe is %s %s port %s, want HTTPS %s on port https", name, pr.HTTPGet.Scheme, pr.HTTPGet.Path, pr.HTTPGet.Port.String(), wantPath)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim || req.IsZero() || lim.Cmp(req) < 0 {
			bad("resources: %s request %v and limit %v must both be set, limit >= request", r, c.Resources.Requests[r], c.Resources.Limits[r])
		}
	}
	psc, csc := pod.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || csc == nil:
		bad("pod and container securityContext are required")
	default:
		isTrue := func(b *bool) bool { return b != nil && *b }
		if !isTrue(psc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
			bad("pod securityContext: runAsNonRoot %v runAsUser %v, want true and 65532", psc.RunAsNonRoot, psc.RunAsUser)
		}
		if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad("pod securityContext: seccompProfile must be RuntimeDefault")
		}
		if !isTrue(csc.RunAsNonRoot) || csc.RunAsUser == nil || *csc.RunAsUser != 65532 {
			bad("container securityContext: runAsNonRoot %v runAsUser %v, want true and 65532", csc.RunAsNonRoot, csc.RunAsUser)
		}
		if !isTrue(csc.ReadOnlyRootFilesystem) {
			bad("container securityContext: readOnlyRootFilesystem must be true")
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			bad("container securityContext: allowPrivilegeEscalation must be false")
		}
		if isTrue(csc.Privileged) {
			bad("container securityContext: privileged")
		}
		if csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) != 0 {
			bad("container securityContext: capabilities must drop ALL and add none: %v", csc.Capabilities)
		}
		if csc.SeccompProfile == nil || csc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			bad("container securityContext: seccompProfile must be RuntimeDefault")
		}
	}
	spread := false
	for _, tsc := range pod.TopologySpreadConstraints {
		if tsc.TopologyKey == "kubernetes.io/hostname" && selects(tsc.LabelSelector, podLabels) {
			spread = true
		}
	}
	if a := pod.Affinity; a != nil && a.PodAntiAffinity != nil {
		for _, w := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if w.PodAffinityTerm.TopologyKey == "kubernetes.io/hostname" && selects(w.PodAffinityTerm.LabelSelector, podLabels) {
				spread = true
			}
		}
		for _, term := range a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
			if term.TopologyKey == "kubernetes.io/hostname" && selects(term.LabelSelector, podLabels) {
				spread = true
			}
		}
	}
	if !spread {
		bad("the pods are not spread over nodes (topologySpreadConstraints or podAntiAffinity on kubernetes.io/hostname selecting them)")
	}

	// Volumes, and the configuration file mounted at configPath.
	vols := map[string]*corev1.Volume{}
	for i := range pod.Volumes {
		vols[pod.Volumes[i].Name] = &pod.Volumes[i]
	}
	var configMount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		v := vols[m.Name]
		if v == nil {
			bad("volumeMount %s names no volume", m.Name)
			continue
		}
		if m.MountPath == "/tmp" {
			if v.EmptyDir == nil {
				bad("/tmp must be an emptyDir")
			}
		} else if !m.ReadOnly {
			bad("volumeMount %s at %s must be readOnly", m.Name, m.MountPath)
		}
		in.mounts[m.MountPath] = v
		if m.MountPath == configPath {
			configMount = &c.VolumeMounts[i]
		}
	}
	if configMount == nil {
		bad("nothing is mounted at %s", configPath)
		return in, p
	}
	cv := in.mounts[configPath]
	if cv.ConfigMap == nil || configMount.SubPath == "" {
		bad("%s must be a subPath of a ConfigMap volume", configPath)
		return in, p
	}
	cm := find[corev1.ConfigMap](s, "ConfigMap", ns, cv.ConfigMap.Name)
	if cm == nil {
		bad("ConfigMap %s/%s (the configuration) is not in the manifests", ns, cv.ConfigMap.Name)
		return in, p
	}
	in.configYAML = cm.Data[configMount.SubPath]
	cfg, err := summarize(in.configYAML)
	if err != nil {
		bad("ConfigMap %s key %s: %v", cm.Name, configMount.SubPath, err)
		return in, p
	}
	in.config = cfg
	if cfg.PlainHTTP || cfg.TLS == nil {
		bad("serve.yaml must serve HTTPS (tls), not plainHTTP")
	} else {
		for _, f := range []string{cfg.TLS.CertFile, cfg.TLS.KeyFile} {
			v := in.mounts[path.Dir(f)]
			if v == nil || v.Secret == nil {
				bad("tls file %s is not in a mounted Secret", f)
			}
		}
	}
	// The trust policy and trust store: inside one projected volume, one
	// folder below its mount (kubelet's top-level entries are symlinks,
	// which keyward refuses as notation does).
	for _, f := range []string{cfg.Policy.TrustPolicy, cfg.Policy.TrustStore} {
		mp, v := in.mountOf(f)
		rel := strings.TrimPrefix(f, mp+"/")
		if v == nil || v.Projected == nil || !strings.Contains(rel, "/") {
			bad("%s is not one folder down in a mounted projected volume", f)
		}
	}
	if mp, _ := in.mountOf(cfg.Policy.TrustPolicy); mp != "" {
		if mp2, _ := in.mountOf(cfg.Policy.TrustStore); mp2 != mp {
			bad("policy.trustPolicy and policy.trustStore are in different volumes: kubelet would not update them together")
		}
	}
	if host, port, _ := strings.Cut(cfg.Listen, ":"); port != "8443" || (host != "" && host != "0.0.0.0") {
		bad("serve.yaml listens on %q, want :8443 (the container port)", cfg.Listen)
	}

	// ServiceAccount.
	if find[corev1.ServiceAccount](s, "ServiceAccount", ns, pod.ServiceAccountName) == nil {
		bad("ServiceAccount %s/%s the pods run as is not in the manifests", ns, pod.ServiceAccountName)
	}

	// Service: 443 -> https (8443), selecting the pods.
	svc := one[corev1.Service](s, "Service", &p)
	if svc != nil {
		in.service = svc
		if svc.Namespace != ns || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
			bad("Service %s/%s does not select the pods", svc.Namespace, svc.Name)
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 || svc.Spec.Ports[0].TargetPort.String() != "https" {
			bad("Service ports %v, want 443 -> https", svc.Spec.Ports)
		}
	}

	// PodDisruptionBudget.
	pdb := one[policyv1.PodDisruptionBudget](s, "PodDisruptionBudget", &p)
	if pdb != nil {
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.String() != "1" || pdb.Spec.MaxUnavailable != nil {
			bad("PodDisruptionBudget minAvailable %v, want 1", pdb.Spec.MinAvailable)
		}
		if pdb.Namespace != ns || !selects(pdb.Spec.Selector, podLabels) {
			bad("PodDisruptionBudget does not select the pods")
		}
	}

	p = append(p, checkWebhooks(s, in, ns)...)
	p = append(p, checkRBAC(s, pod.ServiceAccountName, ns)...)
	return in, p
}

// mountOf returns the mount path and volume that hold file, the longest
// mount path that is a prefix of it.
func (in *install) mountOf(file string) (string, *corev1.Volume) {
	best := ""
	for mp := range in.mounts {
		if strings.HasPrefix(file, mp+"/") && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		return "", nil
	}
	return best, in.mounts[best]
}

func selects(ls *metav1.LabelSelector, l labels.Set) bool {
	if ls == nil {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	return err == nil && !sel.Empty() && sel.Matches(l)
}

// webhook is what the validating and mutating webhooks share.
type webhook struct {
	config, name   string
	clientConfig   admissionregistrationv1.WebhookClientConfig
	rules          []admissionregistrationv1.RuleWithOperations
	failurePolicy  *admissionregistrationv1.FailurePolicyType
	sideEffects    *admissionregistrationv1.SideEffectClass
	versions       []string
	timeoutSeconds *int32
	nsSelector     *metav1.LabelSelector
	annotations    map[string]string
}

func checkWebhooks(s *set, in *install, ns string) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	var hooks []webhook
	vwc := one[admissionregistrationv1.ValidatingWebhookConfiguration](s, "ValidatingWebhookConfiguration", &p)
	mwc := one[admissionregistrationv1.MutatingWebhookConfiguration](s, "MutatingWebhookConfiguration", &p)
	if vwc != nil {
		if len(vwc.Webhooks) != 1 {
			bad("ValidatingWebhookConfiguration has %d webhooks, want 1", len(vwc.Webhooks))
		}
		for _, w := range vwc.Webhooks {
			hooks = append(hooks, webhook{"ValidatingWebhookConfiguration", w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.SideEffects, w.AdmissionReviewVersions, w.TimeoutSeconds, w.NamespaceSelector, vwc.Annotations})
			if w.ClientConfig.Service != nil && ptrString(w.ClientConfig.Service.Path) != validatePath {
				bad("validating webhook %s calls %s, want %s", w.Name, ptrString(w.ClientConfig.Service.Path), validatePath)
			}
		}
	}
	if mwc != nil {
		if len(mwc.Webhooks) != 1 {
			bad("MutatingWebhookConfiguration has %d webhooks, want 1", len(mwc.Webhooks))
		}
		for _, w := range mwc.Webhooks {
			hooks = append(hooks, webhook{"MutatingWebhookConfiguration", w.Name, w.ClientConfig, w.Rules, w.FailurePolicy, w.SideEffects, w.AdmissionReviewVersions, w.TimeoutSeconds, w.NamespaceSelector, mwc.Annotations})
			if w.ClientConfig.Service != nil && ptrString(w.ClientConfig.Service.Path) != mutatePath {
				bad("mutating webhook %s calls %s, want %s", w.Name, ptrString(w.ClientConfig.Service.Path), mutatePath)
			}
			if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
				bad("mutating webhook %s: reinvocationPolicy must be IfNeeded", w.Name)
			}
		}
	}
	for _, w := range hooks {
		id := w.config + " " + w.name
		if w.failurePolicy == nil || *w.failurePolicy != admissionregistrationv1.Fail {
			bad("%s: failurePolicy must be Fail (fail closed)", id)
		}
		if w.sideEffects == nil || *w.sideEffects != admissionregistrationv1.SideEffectClassNone {
			bad("%s: sideEffects must be None (server-side dry run works)", id)
		}
		if !slices.Equal(w.versions, []string{"v1"}) {
			bad("%s: admissionReviewVersions %v, want [v1]", id, w.versions)
		}
		if w.timeoutSeconds == nil || *w.timeoutSeconds < 1 || *w.timeoutSeconds > 30 {
			bad("%s: timeoutSeconds must be set, 1 to 30", id)
		} else if in.config != nil && in.config.RequestTimeout >= time.Duration(*w.timeoutSeconds)*time.Second {
			bad("%s: timeouts.request %s is not below timeoutSeconds %d", id, in.config.RequestTimeout, *w.timeoutSeconds)
		}
		sc := w.clientConfig.Service
		switch {
		case w.clientConfig.URL != nil || sc == nil:
			bad("%s: clientConfig must name the Service", id)
		case in.service != nil && (sc.Name != in.service.Name || sc.Namespace != in.service.Namespace || sc.Port == nil || *sc.Port != 443):
			bad("%s: clientConfig.service %s/%s:%v is not the Service %s/%s:443", id, sc.Namespace, sc.Name, sc.Port, in.service.Namespace, in.service.Name)
		}
		// Namespaces: kube-system and keyward's own are never sent;
		// others are.
		sel, err := metav1.LabelSelectorAsSelector(w.nsSelector)
		if w.nsSelector == nil || err != nil {
			bad("%s: namespaceSelector missing or invalid (%v)", id, err)
		} else {
			for _, n := range append([]string{ns}, mustExclude...) {
				if sel.Matches(labels.Set{"kubernetes.io/metadata.name": n}) {
					bad("%s: namespace %s is not excluded", id, n)
				}
			}
			for _, n := range []string{"default", "team-a"} {
				if !sel.Matches(labels.Set{"kubernetes.io/metadata.name": n}) {
					bad("%s: namespace %s is excluded, it must be checked", id, n)
				}
			}
		}
		// Rules: CREATE and UPDATE of every resource with a pod template.
		for group, resources := range wantResources {
			for _, r := range resources {
				if !coveredBy(w.rules, group, r) {
					bad("%s: CREATE and UPDATE of %s (group %q) are not covered", id, r, group)
				}
			}
		}
		// The CA: cert-manager injects it, or it is given.
		if ref, ok := w.annotations["cert-manager.io/inject-ca-from"]; ok {
			p = append(p, checkCertificate(s, in, ref)...)
		} else if len(w.clientConfig.CABundle) == 0 {
			bad("%s: neither a caBundle nor the cert-manager.io/inject-ca-from annotation", id)
		}
	}
	return p
}

func coveredBy(rules []admissionregistrationv1.RuleWithOperations, group, resource string) bool {
	for _, op := range []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update} {
		found := false
		for _, r := range rules {
			if (slices.Contains(r.Operations, op) || slices.Contains(r.Operations, admissionregistrationv1.OperationAll)) &&
				slices.Contains(r.APIGroups, group) && slices.Contains(r.APIVersions, "v1") && slices.Contains(r.Resources, resource) {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// checkCertificate checks that the Certificate an inject-ca-from
// annotation names (namespace/name) exists, writes the Secret the pods
// mount as TLS, and names the Service.
func checkCertificate(s *set, in *install, ref string) []string {
	var p []string
	ns, name, _ := strings.Cut(ref, "/")
	cert := find[certificate](s, "Certificate", ns, name)
	if cert == nil {
		return []string{fmt.Sprintf("cert-manager.io/inject-ca-from names %s, which is not a Certificate in the manifests", ref)}
	}
	if in.config != nil && in.config.TLS != nil {
		v := in.mounts[path.Dir(in.config.TLS.CertFile)]
		if v == nil || v.Secret == nil || v.Secret.SecretName != cert.Spec.SecretName {
			p = append(p, fmt.Sprintf("Certificate %s writes Secret %s, which is not the TLS Secret the pods mount", ref, cert.Spec.SecretName))
		}
	}
	if in.service != nil {
		want := in.service.Name + "." + in.service.Namespace + ".svc"
		if !slices.Contains(cert.Spec.DNSNames, want) {
			p = append(p, fmt.Sprintf("Certificate %s dnsNames %v lack %s (the name the API server calls)", ref, cert.Spec.DNSNames, want))
		}
	}
	if iss := find[issuer](s, "Issuer", ns, cert.Spec.IssuerRef.Name); iss == nil {
		p = append(p, fmt.Sprintf("Certificate %s: issuer %s is not an Issuer in the manifests", ref, cert.Spec.IssuerRef.Name))
	}
	return p
}

// checkRBAC checks that the service account reads secrets only through
// namespaced Roles, and namespaces through a ClusterRole, and nothing else.
func checkRBAC(s *set, sa, ns string) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	boundToSA := func(subjects []rbacv1.Subject) bool {
		for _, sub := range subjects {
			if sub.Kind == "ServiceAccount" && sub.Name == sa && sub.Namespace == ns {
				return true
			}
		}
		return false
	}
	checkRules := func(id string, rules []rbacv1.PolicyRule, allowed map[string][]string) {
		for _, r := range rules {
			if len(r.NonResourceURLs) > 0 {
				bad("%s: non-resource URLs", id)
			}
			if !slices.Equal(r.APIGroups, []string{""}) {
				bad("%s: API groups %v, want only the core group", id, r.APIGroups)
			}
			for _, res := range r.Resources {
				verbs, ok := allowed[res]
				if !ok {
					bad("%s: grants %s", id, res)
					continue
				}
				for _, v := range r.Verbs {
					if !slices.Contains(verbs, v) {
						bad("%s: grants %s on %s", id, v, res)
					}
				}
			}
		}
	}
	clusterRoles := 0
	for _, o := range s.all("ClusterRoleBinding") {
		b := o.typed.(*rbacv1.ClusterRoleBinding)
		if !boundToSA(b.Subjects) {
			continue
		}
		cr := find[rbacv1.ClusterRole](s, "ClusterRole", "", b.RoleRef.Name)
		if b.RoleRef.Kind != "ClusterRole" || cr == nil {
			bad("ClusterRoleBinding %s binds %s %s, not a ClusterRole of the manifests", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
			continue
		}
		clusterRoles++
		checkRules("ClusterRole "+cr.Name, cr.Rules, map[string][]string{"namespaces": {"get"}})
	}
	if clusterRoles == 0 {
		bad("no ClusterRole lets the service account read namespaces")
	}
	secretRoles := 0
	for _, o := range s.all("RoleBinding") {
		b := o.typed.(*rbacv1.RoleBinding)
		if !boundToSA(b.Subjects) {
			continue
		}
		if b.RoleRef.Kind != "Role" {
			bad("RoleBinding %s/%s binds a %s; only namespaced Roles may grant secrets", b.Namespace, b.Name, b.RoleRef.Kind)
			continue
		}
		r := find[rbacv1.Role](s, "Role", b.Namespace, b.RoleRef.Name)
		if r == nil {
			bad("RoleBinding %s/%s binds Role %s, not in the manifests", b.Namespace, b.Name, b.RoleRef.Name)
			continue
		}
		secretRoles++
		checkRules("Role "+b.Namespace+"/"+r.Name, r.Rules, map[string][]string{"secrets": {"get"}})
	}
	if secretRoles == 0 {
		bad("no namespaced Role lets the service account read pull secrets")
	}
	return p
}

// checkGatekeeper checks the Gatekeeper variant: the Provider calls the
// Service's gatekeeper path within a timeout above keyward's request
// timeout, and the constraint uses the template and excludes the
// namespaces the webhooks exclude.
func checkGatekeeper(s *set, in *install, ns string) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	prov := one[provider](s, "Provider", &p)
	tmpl := one[constraintTemplate](s, "ConstraintTemplate", &p)
	cons := one[constraint](s, "KeywardVerification", &p)
	if prov != nil {
		u, err := url.Parse(prov.Spec.URL)
		switch {
		case err != nil:
			bad("Provider url %q: %v", prov.Spec.URL, err)
		case u.Scheme != "https" || u.Path != gatekeeperPath:
			bad("Provider url %q, want https://...%s", prov.Spec.URL, gatekeeperPath)
		case in.service != nil && u.Host != in.service.Name+"."+in.service.Namespace+":443":
			bad("Provider url host %q, want %s.%s:443", u.Host, in.service.Name, in.service.Namespace)
		}
		if in.config != nil && time.Duration(prov.Spec.Timeout)*time.Second <= in.config.RequestTimeout {
			bad("Provider timeout %ds is not above timeouts.request %s", prov.Spec.Timeout, in.config.RequestTimeout)
		}
		if prov.Spec.CABundle == "" {
			bad("Provider has no caBundle")
		}
		if prov.Name != "keyward" {
			bad("Provider is named %q; the template calls provider \"keyward\"", prov.Name)
		}
	}
	if tmpl != nil && cons != nil {
		if tmpl.Spec.CRD.Spec.Names.Kind != "KeywardVerification" || strings.ToLower(tmpl.Spec.CRD.Spec.Names.Kind) != tmpl.Name {
			bad("ConstraintTemplate %s defines kind %s", tmpl.Name, tmpl.Spec.CRD.Spec.Names.Kind)
		}
		if len(tmpl.Spec.Targets) != 1 || tmpl.Spec.Targets[0].Target != "admission.k8s.gatekeeper.sh" {
			bad("ConstraintTemplate targets %v", tmpl.Spec.Targets)
		} else if rego := tmpl.Spec.Targets[0].Rego; !strings.Contains(rego, `external_data({"provider": "keyward", "keys": keys})`) ||
			!strings.HasPrefix(strings.TrimSpace(rego), "package "+tmpl.Name) {
			bad("ConstraintTemplate rego does not call external_data with provider keyward, or its package is not %s", tmpl.Name)
		}
		if cons.Spec.EnforcementAction != "deny" {
			bad("constraint enforcementAction %q, want deny", cons.Spec.EnforcementAction)
		}
		for _, n := range append([]string{ns}, mustExclude...) {
			if !slices.Contains(cons.Spec.Match.ExcludedNamespaces, n) {
				bad("constraint does not exclude namespace %s", n)
			}
		}
		kinds := map[string]bool{}
		for _, k := range cons.Spec.Match.Kinds {
			for _, kind := range k.Kinds {
				kinds[kind] = true
			}
		}
		for _, k := range []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"} {
			if !kinds[k] {
				bad("constraint does not match kind %s", k)
			}
		}
	}
	return p
}

func ptrString(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
