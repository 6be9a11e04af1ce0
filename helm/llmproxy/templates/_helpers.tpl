{{/* Names and labels shared by every template. */}}

{{- define "llmproxy.name" -}}
{{- .Values.operator.serviceName -}}
{{- end -}}

{{/* Prefix of cluster-scoped objects, so two releases never collide (default: llmproxy). */}}
{{- define "llmproxy.clusterPrefix" -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmproxy.webhookName" -}}
{{- default .Release.Name .Values.webhook.configurationName -}}
{{- end -}}

{{- define "llmproxy.selectorLabels" -}}
app.kubernetes.io/name: llmproxy-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "llmproxy.labels" -}}
{{ include "llmproxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: llmproxy
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of objects that are not the operator itself (roles, dashboards). */}}
{{- define "llmproxy.commonLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: llmproxy
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "llmproxy.imageRef" -}}
{{- $repo := .repository -}}
{{- if .digest -}}
{{- printf "%s@%s" $repo .digest -}}
{{- else -}}
{{- printf "%s:%s" $repo .tag -}}
{{- end -}}
{{- end -}}

{{- define "llmproxy.image" -}}
{{- include "llmproxy.imageRef" (dict "repository" .Values.image.repository "tag" (default .Chart.AppVersion .Values.image.tag) "digest" .Values.image.digest) -}}
{{- end -}}

{{/* The sidecar image the webhook injects: its own repository/tag, else the operator image. */}}
{{- define "llmproxy.sidecarImage" -}}
{{- $repo := default .Values.image.repository .Values.sidecar.image.repository -}}
{{- if and (not .Values.sidecar.image.repository) (not .Values.sidecar.image.tag) -}}
{{- include "llmproxy.image" . -}}
{{- else -}}
{{- include "llmproxy.imageRef" (dict "repository" $repo "tag" (default (default .Chart.AppVersion .Values.image.tag) .Values.sidecar.image.tag) "digest" "") -}}
{{- end -}}
{{- end -}}

{{/* The serving Certificate cert-manager issues (for cert-manager.io/inject-ca-from). */}}
{{- define "llmproxy.certificateName" -}}
{{- .Values.operator.certSecretName -}}
{{- end -}}

{{/*
The namespaces the webhooks never see: the configured ones (and the release's own, for
injection), ANDed with webhook.namespaceSelector.
Takes (dict "root" $ "excludeRelease" bool "matchLabels" extraLabels).
*/}}
{{- define "llmproxy.namespaceSelector" -}}
{{- $root := .root -}}
{{- $user := $root.Values.webhook.namespaceSelector -}}
{{- $labels := merge (dict) (default (dict) .matchLabels) (default (dict) $user.matchLabels) -}}
{{- $excluded := $root.Values.webhook.excludedNamespaces -}}
{{- if .excludeRelease -}}
{{- $excluded = uniq (append $excluded $root.Release.Namespace) -}}
{{- end -}}
namespaceSelector:
  {{- with $labels }}
  matchLabels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- toYaml $excluded | nindent 8 }}
    {{- with $user.matchExpressions }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}
