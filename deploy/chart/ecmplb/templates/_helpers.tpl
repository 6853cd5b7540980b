{{/* The image of a component: registry + repository : tag. */}}
{{- define "ecmplb.image" -}}
{{- $root := index . 0 -}}{{- $c := index . 1 -}}
{{- printf "%s%s:%s" $root.Values.image.registry $c.image.repository (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end -}}

{{/* Labels of a component's objects and pods. */}}
{{- define "ecmplb.labels" -}}
app.kubernetes.io/name: ecmplb
app.kubernetes.io/component: {{ . }}
{{- end -}}

{{/* The port of a host:port address ("" when there is none). */}}
{{- define "ecmplb.port" -}}
{{- if and . (ne . "0") -}}{{- last (splitList ":" .) -}}{{- end -}}
{{- end -}}

{{/* Scheduling settings shared by both pod templates. */}}
{{- define "ecmplb.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}
