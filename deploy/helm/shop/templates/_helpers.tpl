{{/* Names and labels shared by every template. */}}

{{- define "shop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: <fullname>-<component>. Args: (dict "root" $ "name" $name) */}}
{{- define "shop.componentName" -}}
{{- printf "%s-%s" (include "shop.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: shop
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of one component. Args: (dict "root" $ "name" $name) */}}
{{- define "shop.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Image of one component, pinned by digest when the deploy workflow passed one. */}}
{{- define "shop.image" -}}
{{- $g := .root.Values.global -}}
{{- $repository := printf "shop-%s" .name -}}
{{- if $g.imageRegistry }}{{ $repository = printf "%s/%s" (trimSuffix "/" $g.imageRegistry) $repository }}{{ end -}}
{{- $digest := get $g.imageDigests .name -}}
{{- if $digest -}}
{{- printf "%s@%s" $repository $digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .root.Chart.AppVersion $g.imageTag) -}}
{{- end -}}
{{- end -}}

{{/* One service's settings merged over the defaults. Args: (dict "root" $ "name" $name "svc" $svc) */}}
{{- define "shop.service" -}}
{{- $merged := mustMergeOverwrite (deepCopy .root.Values.defaults) (deepCopy .svc) -}}
{{- toYaml $merged -}}
{{- end -}}

{{/* Pod and container security settings (the image runs as uid 10001, writes nothing). */}}
{{- define "shop.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "shop.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* JSON object component -> in-cluster URL of a path on it. Args: (dict "root" $ "sources" {component: path}) */}}
{{- define "shop.componentUrls" -}}
{{- $urls := dict -}}
{{- range $callee, $path := .sources -}}
{{- $port := (get $.root.Values.services $callee).port -}}
{{- $_ := set $urls $callee (printf "http://%s:%v%s" (include "shop.componentName" (dict "root" $.root "name" $callee)) $port $path) -}}
{{- end -}}
{{- toJson $urls -}}
{{- end -}}

{{- define "shop.jwksUrl" -}}
{{- $auth := .Values.services.auth -}}
{{- default (printf "http://%s:%v/.well-known/jwks.json" (include "shop.componentName" (dict "root" . "name" "auth")) $auth.port) .Values.config.SHOP_JWKS_URL -}}
{{- end -}}

{{/* TLS to the stores: libpq variables for asyncpg, and the CA bundle when one is configured. */}}
{{- define "shop.storeTlsEnv" -}}
{{- $tls := .Values.storeTls -}}
- name: PGSSLMODE
  value: {{ $tls.postgresSslMode | quote }}
{{- if $tls.caBundleConfigMap }}
- name: PGSSLROOTCERT
  value: {{ printf "%s/%s" $tls.mountPath $tls.caBundleKey | quote }}
{{- end }}
{{- end -}}

{{- define "shop.storeTlsMount" -}}
{{- if .Values.storeTls.caBundleConfigMap -}}
- name: store-ca
  mountPath: {{ .Values.storeTls.mountPath }}
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "shop.storeTlsVolume" -}}
{{- if .Values.storeTls.caBundleConfigMap -}}
- name: store-ca
  configMap:
    name: {{ .Values.storeTls.caBundleConfigMap }}
{{- end -}}
{{- end -}}
