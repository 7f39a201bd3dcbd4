{{/* Names, labels, images and the checks that must stop a render. */}}

{{- define "imgsel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "imgsel.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: <fullname>-<component>, within 63 characters. */}}
{{- define "imgsel.componentName" -}}
{{- printf "%s-%s" (include "imgsel.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "imgsel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "imgsel.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "imgsel.labels" -}}
{{ include "imgsel.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: imgsel
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* repository:tag of an image value; the tag defaults to the chart's appVersion. */}}
{{- define "imgsel.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag | toString) -}}
{{- end -}}

{{- define "imgsel.triton.serviceName" -}}
{{- include "imgsel.componentName" (dict "root" . "component" "triton") -}}
{{- end -}}

{{- define "imgsel.postgresql.secretName" -}}
{{- default (include "imgsel.componentName" (dict "root" . "component" "postgresql")) .Values.postgresql.auth.existingSecret -}}
{{- end -}}

{{- define "imgsel.apiKeys.secretName" -}}
{{- if .Values.gateway.apiKeys.generate -}}
{{- include "imgsel.componentName" (dict "root" . "component" "api-keys") -}}
{{- else -}}
{{- .Values.gateway.apiKeys.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The Secret and key holding IMGSEL_DATABASE_URL. */}}
{{- define "imgsel.database.secretName" -}}
{{- if .Values.postgresql.enabled -}}
{{- include "imgsel.postgresql.secretName" . -}}
{{- else -}}
{{- .Values.gateway.database.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "imgsel.database.secretKey" -}}
{{- if .Values.postgresql.enabled -}}url{{- else -}}{{ .Values.gateway.database.key }}{{- end -}}
{{- end -}}

{{/* Triton's --model-repository. */}}
{{- define "imgsel.triton.repository" -}}
{{- $repo := .Values.triton.modelRepository -}}
{{- if eq $repo.source "objectStorage" -}}
{{- $repo.objectStorage.url -}}
{{- else if and (eq $repo.source "pvc") .Values.triton.engineBuild.enabled -}}
/serving
{{- else -}}
{{- $repo.path -}}
{{- end -}}
{{- end -}}

{{- define "imgsel.triton.monitoringApi" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" -}}true{{- end -}}
{{- end -}}

{{/* Combinations the schema cannot express; a failed check stops the render with its reason. */}}
{{- define "imgsel.validate" -}}
{{- $t := .Values.triton -}}
{{- $g := .Values.gateway -}}
{{- if le (int $t.terminationGracePeriodSeconds) (add $t.preStopSleepSeconds $t.exitTimeoutSeconds | int) -}}
{{- fail (printf "triton.terminationGracePeriodSeconds (%v) must be longer than triton.preStopSleepSeconds (%v) + triton.exitTimeoutSeconds (%v): Triton would be killed while unloading models" $t.terminationGracePeriodSeconds $t.preStopSleepSeconds $t.exitTimeoutSeconds) -}}
{{- end -}}
{{- if le (int $g.terminationGracePeriodSeconds) (add $g.preStopSleepSeconds $g.gracefulShutdownSeconds | int) -}}
{{- fail (printf "gateway.terminationGracePeriodSeconds (%v) must be longer than gateway.preStopSleepSeconds (%v) + gateway.gracefulShutdownSeconds (%v)" $g.terminationGracePeriodSeconds $g.preStopSleepSeconds $g.gracefulShutdownSeconds) -}}
{{- end -}}
{{- if and (eq $t.modelRepository.source "objectStorage") (not $t.modelRepository.objectStorage.url) -}}
{{- fail "triton.modelRepository.source=objectStorage needs triton.modelRepository.objectStorage.url (s3://... or gs://...)" -}}
{{- end -}}
{{- if and $t.engineBuild.enabled (ne $t.modelRepository.source "pvc") -}}
{{- fail (printf "triton.engineBuild needs the repository on a PVC (triton.modelRepository.source=pvc), not %s: build the plans with the chart on a PVC and copy them to the bucket, or set triton.engineBuild.enabled=false" $t.modelRepository.source) -}}
{{- end -}}
{{- if and $t.engineBuild.enabled (eq (int $t.gpu.count) 0) -}}
{{- fail "triton.engineBuild needs a GPU (triton.gpu.count >= 1)" -}}
{{- end -}}
{{- if not (or $g.apiKeys.generate $g.apiKeys.existingSecret $g.allowUnauthenticated) -}}
{{- fail "the gateway listens on 0.0.0.0: set gateway.apiKeys.existingSecret or gateway.apiKeys.generate, or gateway.allowUnauthenticated=true for an open API" -}}
{{- end -}}
{{- if not (or .Values.postgresql.enabled $g.database.existingSecret) -}}
{{- fail "the gateway needs a database: gateway.database.existingSecret (a Secret with the postgresql:// URL) or postgresql.enabled=true" -}}
{{- end -}}
{{- if and .Values.monitoring.serviceMonitor.enabled .Values.monitoring.podMonitor.enabled -}}
{{- fail "enable monitoring.serviceMonitor or monitoring.podMonitor, not both (every target would be scraped twice)" -}}
{{- end -}}
{{- end -}}

{{/* Per-pod queue/compute ratio of the Triton model triton.autoscaling.model over rateWindow. `matchers` are the
label matchers inside {...}; `by` the grouping labels. Used by the adapter rule and the PrometheusRule alike. */}}
{{- define "imgsel.triton.queueRatio" -}}
{{- $a := .root.Values.triton.autoscaling -}}
{{- $selector := printf "%s,model=%s" .matchers ($a.model | quote) -}}
{{- printf "sum by (%s) (rate(nv_inference_queue_duration_us{%s}[%s])) / clamp_min(sum by (%s) (rate(nv_inference_compute_infer_duration_us{%s}[%s])), 1)" .by $selector $a.rateWindow .by $selector $a.rateWindow -}}
{{- end -}}

{{/* Label matchers selecting this release's pods of a component in Prometheus (labels set by the Prometheus
Operator's ServiceMonitor and PodMonitor). */}}
{{- define "imgsel.promPods" -}}
{{- printf "namespace=%s,pod=~%s" (.root.Release.Namespace | quote) (printf "%s-[a-z0-9]+-[a-z0-9]+" (include "imgsel.componentName" .) | quote) -}}
{{- end -}}
