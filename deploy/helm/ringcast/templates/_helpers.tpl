{{/* Name of every object: the release name, or release-chart when the
release name does not already say ringcast. */}}
{{- define "ringcast.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods: stable across upgrades. */}}
{{- define "ringcast.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ringcast.labels" -}}
{{ include "ringcast.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* /etc/ringcast/ringcast.ini from .Values.config: sections and keys in
order, lists as repeated keys, empty values left out. */}}
{{- define "ringcast.ini" -}}
; generated from the chart's values (config); every key: ringcast --help
{{- range $section, $keys := .Values.config }}

[{{ $section }}]
{{- range $key, $value := $keys }}
{{- if kindIs "slice" $value }}
{{- range $value }}
{{ $key }} = {{ . }}
{{- end }}
{{- else if ne (toString $value) "" }}
{{ $key }} = {{ $value }}
{{- end }}
{{- end }}
{{- end }}
{{ end -}}
