{{/*
keyward.fullname: the name of every object, the release name when it
contains "keyward", else <release>-keyward; at most 63 characters.
*/}}
{{- define "keyward.fullname" -}}
{{- if contains "keyward" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-keyward" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* keyward.selectorLabels: the labels the Deployment, Service and PDB select. */}}
{{- define "keyward.selectorLabels" -}}
app.kubernetes.io/name: keyward
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* keyward.labels: the labels of every object. */}}
{{- define "keyward.labels" -}}
{{ include "keyward.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: keyward
{{- end -}}

{{/* keyward.image: repository:tag, or repository@digest when a digest is given. */}}
{{- define "keyward.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* keyward.tlsSecret: the Secret holding the serving certificate. */}}
{{- define "keyward.tlsSecret" -}}
{{- if .Values.tls.certManager -}}
{{- printf "%s-tls" (include "keyward.fullname" .) -}}
{{- else -}}
{{- required "tls.existingSecret is required when tls.certManager is false: a kubernetes.io/tls Secret with keyward's serving certificate" .Values.tls.existingSecret -}}
{{- end -}}
{{- end -}}

{{/*
keyward.excludedNamespaces: the namespaces the webhooks never see, as a
JSON list: excludeNamespaces and the release's own namespace, sorted and
without duplicates.
*/}}
{{- define "keyward.excludedNamespaces" -}}
{{- append .Values.webhooks.excludeNamespaces .Release.Namespace | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/*
keyward.trustStoreItems: the items of a trust store source, from a list of
certificates {type, store, file, pem} (keys <type>.<store>.<file>), else
the given items; each path under current/truststore/ (see
keyward.policyVolume).
*/}}
{{- define "keyward.trustStoreItems" -}}
{{- if .certificates -}}
{{- range .certificates }}
- key: {{ printf "%s.%s.%s" .type .store .file }}
  path: {{ printf "current/truststore/x509/%s/%s/%s" .type .store .file }}
{{- end -}}
{{- else -}}
{{- range .items }}
- key: {{ .key }}
  path: current/truststore/{{ .path }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
keyward.checkTrustStore: fails unless a trust store has certificates or
exactly one existing object with items.
*/}}
{{- define "keyward.checkTrustStore" -}}
{{- $where := .where -}}
{{- with .store -}}
{{- if and .existingConfigMap .existingSecret -}}
{{- fail (printf "%s: give existingConfigMap or existingSecret, not both" $where) -}}
{{- end -}}
{{- if and (or .existingConfigMap .existingSecret) (not .items) -}}
{{- fail (printf "%s.items is required with existingConfigMap or existingSecret: where each key goes, e.g. [{key: root.crt, path: x509/ca/prod/root.crt}]" $where) -}}
{{- end -}}
{{- if and (not (or .existingConfigMap .existingSecret)) (not .certificates) -}}
{{- fail (printf "%s: give certificates, or existingConfigMap/existingSecret with items" $where) -}}
{{- end -}}
{{- range .certificates -}}
{{- if not (has .type (list "ca" "signingAuthority" "tsa")) -}}
{{- fail (printf "%s.certificates: type %q is not ca, signingAuthority or tsa" $where .type) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
keyward.policyVolume: the volume of one policy set, its trust policy and
trust store projected together, so that kubelet updates both at once.
Mounted at /etc/keyward/policies/<set>, the files are
current/trustpolicy.json and current/truststore/x509/...: kubelet makes
each top-level entry of the volume a symlink (into ..data), and keyward, as
notation, refuses a trust policy file or trust store folder that is itself
a symlink, so the files live one folder down, in "current".
Arguments: root ($), policy (the set's values), suffix ("" or
-<set name>), name (the volume name).
*/}}
{{- define "keyward.policyVolume" -}}
{{- $full := include "keyward.fullname" .root -}}
- name: {{ .name }}
  projected:
    sources:
      - configMap:
          name: {{ default (printf "%s-policy%s" $full .suffix) .policy.existingConfigMap }}
          items:
            - key: trustpolicy.json
              path: current/trustpolicy.json
{{- with .policy.trustStore }}
{{- if .existingSecret }}
      - secret:
          name: {{ .existingSecret }}
{{- else }}
      - configMap:
          name: {{ default (printf "%s-truststore%s" $full $.suffix) .existingConfigMap }}
{{- end }}
          items:
            {{- include "keyward.trustStoreItems" . | trim | nindent 12 }}
{{- end }}
{{- end -}}
