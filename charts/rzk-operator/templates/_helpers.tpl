{{/* Full name of the release's objects. */}}
{{- define "rzk-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rzk-operator.labels" -}}
app.kubernetes.io/name: rzk-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "rzk-operator.selectorLabels" -}}
app.kubernetes.io/name: rzk-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rzk-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rzk-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
