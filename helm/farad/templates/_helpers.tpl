{{/* Chart name, truncated to 63 characters (DNS label). */}}
{{- define "farad.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart> unless the release name already holds the chart name.
At most 52 characters: StatefulSet pods get a controller-revision-hash label <name>-<hash>
that must fit in 63.
*/}}
{{- define "farad.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "farad.headlessName" -}}
{{- printf "%s-headless" (include "farad.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "farad.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "farad.labels" -}}
helm.sh/chart: {{ include "farad.chart" . }}
{{ include "farad.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the pods: never change them across upgrades (StatefulSet selectors are immutable). */}}
{{- define "farad.selectorLabels" -}}
app.kubernetes.io/name: {{ include "farad.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "farad.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "farad.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "farad.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* maxUnavailable of the PodDisruptionBudget: the value, else k, at least 1. */}}
{{- define "farad.pdbMaxUnavailable" -}}
{{- if kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable }}
{{- max 1 (int .Values.replicas) }}
{{- else }}
{{- .Values.podDisruptionBudget.maxUnavailable }}
{{- end }}
{{- end }}

{{/* Checks across values that values.schema.json cannot express. */}}
{{/* "true" when farad reaches Redis over TLS (redis.tls, or a rediss:// url); empty otherwise. */}}
{{- define "farad.redisTls" -}}
{{- if and .Values.redis.url (or .Values.redis.tls (hasPrefix "rediss://" .Values.redis.url)) }}true{{ end }}
{{- end }}

{{- define "farad.validate" -}}
{{- $n := int .Values.replicaCount }}
{{- $k := int .Values.replicas }}
{{- if and (gt $n 0) (ge $k $n) }}
{{- fail (printf "replicas (k=%d) needs at least k+1 instances, but replicaCount is %d: set replicaCount >= %d or lower replicas" $k $n (add $k 1)) }}
{{- end }}
{{- if and (eq .Values.transport "embedded") (gt $n 1) }}
{{- fail (printf "transport embedded runs a single node: replicaCount must be 0 or 1, not %d (use transport: kafka to scale out)" $n) }}
{{- end }}
{{- if and (eq .Values.transport "embedded") (gt $k 0) }}
{{- fail "transport embedded has no standbys: set replicas: 0" }}
{{- end }}
{{- if and .Values.kafka.tls.certKey (not .Values.kafka.tls.keyKey) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey must be set together (mutual TLS)" }}
{{- end }}
{{- if and .Values.kafka.tls.keyKey (not .Values.kafka.tls.certKey) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey must be set together (mutual TLS)" }}
{{- end }}
{{- if and .Values.kafka.tls.existingSecret (not .Values.kafka.tls.caKey) (not .Values.kafka.tls.certKey) }}
{{- fail "kafka.tls.existingSecret is set but neither kafka.tls.caKey nor kafka.tls.certKey names a key in it" }}
{{- end }}
{{- if and .Values.kafka.tls.certKey (not .Values.kafka.tls.existingSecret) }}
{{- fail "kafka.tls.certKey needs kafka.tls.existingSecret (the Secret holding the client certificate)" }}
{{- end }}
{{- with .Values.redis.tlsSecret }}
{{- if ne (empty .certKey) (empty .keyKey) }}
{{- fail "redis.tlsSecret.certKey and redis.tlsSecret.keyKey must be set together (client certificate)" }}
{{- end }}
{{- if and .existingSecret (not .caKey) (not .certKey) }}
{{- fail "redis.tlsSecret.existingSecret is set but neither redis.tlsSecret.caKey nor redis.tlsSecret.certKey names a key in it" }}
{{- end }}
{{- if and .certKey (not .existingSecret) }}
{{- fail "redis.tlsSecret.certKey needs redis.tlsSecret.existingSecret (the Secret holding the client certificate)" }}
{{- end }}
{{- if and .existingSecret $.Values.redis.url (not (include "farad.redisTls" $)) }}
{{- fail "redis.tlsSecret.existingSecret is set but Redis is reached without TLS: set redis.tls: true or use a rediss:// url" }}
{{- end }}
{{- end }}
{{- end }}
