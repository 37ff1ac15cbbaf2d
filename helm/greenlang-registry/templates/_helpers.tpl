{{/*
Names, labels, images, identities and certificates shared by every template.
*/}}

{{- define "greenlang-registry.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release name when it already says the chart's name (greenlang-registry). */}}
{{- define "greenlang-registry.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "greenlang-registry.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels the release adds to objects rendered from crds/ (which carry name, part-of and component). */}}
{{- define "greenlang-registry.releaseLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "greenlang-registry.versionLabels" . }}
{{- end }}

{{- define "greenlang-registry.versionLabels" -}}
helm.sh/chart: {{ include "greenlang-registry.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of a component's objects: (dict "context" $ "component" "operator"). */}}
{{- define "greenlang-registry.labels" -}}
{{ include "greenlang-registry.selectorLabels" . }}
app.kubernetes.io/part-of: greenlang-registry
{{ include "greenlang-registry.versionLabels" .context }}
{{- end }}

{{- define "greenlang-registry.selectorLabels" -}}
app.kubernetes.io/name: {{ include "greenlang-registry.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* <fullname>-<component>: the name of a component's Deployment, Service and ServiceAccount. */}}
{{- define "greenlang-registry.componentName" -}}
{{- printf "%s-%s" (include "greenlang-registry.fullname" .context) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "greenlang-registry.serviceAccountName" -}}
{{- include "greenlang-registry.componentName" . }}
{{- end }}

{{/* The user name a component's ServiceAccount authenticates as; the admission policies trust it by this name. */}}
{{- define "greenlang-registry.user" -}}
{{- printf "system:serviceaccount:%s:%s" .context.Release.Namespace (include "greenlang-registry.serviceAccountName" .) }}
{{- end }}

{{/* An image reference: (dict "image" .Values.webhooks.opa.image "default" .Values.image "context" $). A digest pins it. */}}
{{- define "greenlang-registry.image" -}}
{{- $default := .default | default dict }}
{{- $repository := .image.repository | default $default.repository }}
{{- $tag := .image.tag | default $default.tag | default .context.Chart.AppVersion }}
{{- $digest := .image.digest | default $default.digest }}
{{- if $digest }}
{{- printf "%s@%s" $repository $digest }}
{{- else }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}
{{- end }}

{{/* Restricted Pod Security: every pod and every container. */}}
{{- define "greenlang-registry.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "greenlang-registry.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Scheduling of a component's pods: (dict "values" .Values.operator "context" $ "component" "operator"). */}}
{{- define "greenlang-registry.scheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
affinity:
  {{- if .values.affinity }}
  {{- toYaml .values.affinity | nindent 2 }}
  {{- else }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "greenlang-registry.selectorLabels" . | nindent 14 }}
  {{- end }}
{{- with .context.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The chart's own PKI (certManager off), made once per render and shared by every template through
.Values._pki. The CA is kept in its Secret across upgrades, so the caBundles stay put; the serving
certificates are issued from it at every install and upgrade.
*/}}
{{- define "greenlang-registry.pki" -}}
{{- if not (hasKey .Values "_pki") }}
{{- $fullname := include "greenlang-registry.fullname" . }}
{{- $namespace := .Release.Namespace }}
{{- $days := int .Values.certificates.selfSigned.validityDays }}
{{- $existing := lookup "v1" "Secret" $namespace (printf "%s-ca" $fullname) }}
{{- $ca := dict }}
{{- if and $existing $existing.data (index $existing.data "tls.crt") (index $existing.data "tls.key") }}
{{- $ca = buildCustomCert (index $existing.data "tls.crt") (index $existing.data "tls.key") }}
{{- else }}
{{- $ca = genCA (printf "%s-ca" $fullname) (int .Values.certificates.selfSigned.caValidityDays) }}
{{- end }}
{{- $webhooks := printf "%s-webhooks" $fullname }}
{{- $mirror := printf "%s-mirror" $fullname }}
{{- $audit := printf "%s-mirror-audit" $fullname }}
{{- $webhookCert := genSignedCert $webhooks nil (list $webhooks (printf "%s.%s" $webhooks $namespace) (printf "%s.%s.svc" $webhooks $namespace)) $days $ca }}
{{- $mirrorCert := genSignedCert $mirror nil (list $mirror (printf "%s.%s" $mirror $namespace) (printf "%s.%s.svc" $mirror $namespace) $audit (printf "%s.%s" $audit $namespace) (printf "%s.%s.svc" $audit $namespace)) $days $ca }}
{{- $_ := set .Values "_pki" (dict "ca" $ca "webhooks" $webhookCert "mirror" $mirrorCert) }}
{{- end }}
{{- end }}

{{/* The base64 CA bundle for the webhook configurations and the APIService (certManager off). */}}
{{- define "greenlang-registry.caBundle" -}}
{{- include "greenlang-registry.pki" . }}
{{- .Values._pki.ca.Cert | b64enc }}
{{- end }}

{{/* Fail early, naming the value to set. */}}
{{- define "greenlang-registry.validate" -}}
{{- if ne .Release.Namespace "greenlang-system" }}
{{- fail (printf "install the chart into the namespace greenlang-system (helm install -n greenlang-system --create-namespace), not %s: the admission policies read greenlang-system/greenlang-registry-identities and the operator keeps its records there" .Release.Namespace) }}
{{- end }}
{{- if and (not .Values.postgres.dsnSecret.name) (not .Values.postgres.bundled.enabled) }}
{{- fail "the mirror needs a database: set postgres.dsnSecret.name (a Secret with the DSN) or postgres.bundled.enabled=true" }}
{{- end }}
{{- if and .Values.mirror.audit.enabled (not .Values.mirror.audit.clientCaSecret) }}
{{- fail "mirror.audit.enabled needs mirror.audit.clientCaSecret: a Secret (key ca.crt) with the CA of the API server's audit client certificate" }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the mirror's DSN. */}}
{{- define "greenlang-registry.dsnSecret" -}}
{{- if .Values.postgres.dsnSecret.name }}
{{- .Values.postgres.dsnSecret.name }}
{{- else }}
{{- printf "%s-postgres" (include "greenlang-registry.fullname" .) }}
{{- end }}
{{- end }}
