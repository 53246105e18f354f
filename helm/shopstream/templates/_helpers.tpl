{{/*
Names of settings the chart sets whose final spelling is decided on other branches: each lives
here only, so a rename at merge is one line. tests/deploy/test_chart.py checks every variable a
container gets against shopstream.config.Settings.
*/}}
{{- define "shopstream.env.adminPort" -}}SHOPSTREAM_ADMIN_PORT{{- end -}}
{{- define "shopstream.env.apiTokensFile" -}}SHOPSTREAM_API_TOKENS_FILE{{- end -}}

{{- define "shopstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shopstream.fullname" -}}
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

{{/* Name of one component's objects: <fullname>-<component>. Call with (dict "root" $ "component" "x"). */}}
{{- define "shopstream.componentName" -}}
{{- printf "%s-%s" (include "shopstream.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shopstream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "shopstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: shopstream
{{- end -}}

{{/* (dict "root" $ "component" "x") */}}
{{- define "shopstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shopstream.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector of every pod of the release (NetworkPolicies). */}}
{{- define "shopstream.releaseSelector" -}}
app.kubernetes.io/name: {{ include "shopstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shopstream.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "shopstream.pullPolicy" -}}
{{- .Values.image.pullPolicy | default (ternary "IfNotPresent" "Always" (not (empty .Values.image.digest))) -}}
{{- end -}}

{{- define "shopstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "shopstream.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "shopstream.secretName" -}}
{{- if and (not .Values.secrets.existingSecret) (not .Values.secrets.create) -}}
{{- fail "the connectors' webhook secrets and the shop writer's credentials need secrets.existingSecret (or secrets.create with secrets.values)" -}}
{{- end -}}
{{- default (include "shopstream.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The ConfigMap's data: topology overlay, policies, status mappings (keys cannot hold "/"). */}}
{{- define "shopstream.configData" -}}
{{- $c := .Values.config -}}
{{- if eq $c.overlay "production" }}
overlay.yaml: |
{{ .Files.Get "files/topology/overlays/production.yaml" | indent 2 }}
{{- else if eq $c.overlay "custom" }}
overlay.yaml: |
{{ $c.overlayContent | indent 2 }}
{{- end }}
orders_policy.yaml: |
{{ default (.Files.Get "files/topology/orders_policy.yaml") $c.ordersPolicy | indent 2 }}
returns_policy.yaml: |
{{ default (.Files.Get "files/topology/returns_policy.yaml") $c.returnsPolicy | indent 2 }}
shop_writer.yaml: |
{{ default (.Files.Get "files/topology/shop_writer.yaml") $c.shopWriter | indent 2 }}
{{- $mappings := dict -}}
{{- range $path, $_ := .Files.Glob "files/topology/mappings/*.yaml" }}
{{- $_ := set $mappings (base $path | trimSuffix ".yaml") ($.Files.Get $path) -}}
{{- end -}}
{{- range $source, $text := $c.mappings }}
{{- $_ := set $mappings $source $text -}}
{{- end -}}
{{- range $source := keys $mappings | sortAlpha }}
mapping.{{ $source }}.yaml: |
{{ get $mappings $source | indent 2 }}
{{- end }}
{{- end -}}

{{/* The config volume: ConfigMap keys laid out as the files the settings name. */}}
{{- define "shopstream.configVolume" -}}
- name: config
  configMap:
    name: {{ .name }}
    items:
      {{- if ne .root.Values.config.overlay "none" }}
      - {key: overlay.yaml, path: overlay.yaml}
      {{- end }}
      - {key: orders_policy.yaml, path: orders_policy.yaml}
      - {key: returns_policy.yaml, path: returns_policy.yaml}
      - {key: shop_writer.yaml, path: shop_writer.yaml}
      {{- range $key, $_ := (include "shopstream.configData" .root | fromYaml) }}
      {{- if hasPrefix "mapping." $key }}
      - {key: {{ $key }}, path: mappings/{{ $key | trimPrefix "mapping." }}}
      {{- end }}
      {{- end }}
{{- end -}}

{{/* Environment every container gets: where the infrastructure is, the config files, the state dir. */}}
{{- define "shopstream.commonEnv" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required (host:port[,host:port])" .Values.kafka.bootstrapServers | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
- name: KAFKA_COMPRESSION
  value: {{ .Values.kafka.compression | quote }}
{{- if .Values.kafka.sasl.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret is required with a SASL mechanism" .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.usernameKey }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- if .Values.kafka.tls.caSecret }}
- name: KAFKA_SSL_CAFILE
  value: /etc/shopstream/kafka-ca/{{ .Values.kafka.tls.caKey }}
{{- end }}
- name: SCHEMA_REGISTRY_URL
  value: {{ required "schemaRegistry.url is required" .Values.schemaRegistry.url | quote }}
{{- if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.urlKey }}
{{- else }}
- name: REDIS_URL
  value: {{ required "redis.url or redis.existingSecret is required" .Values.redis.url | quote }}
{{- end }}
- name: SHOPSTREAM_TOPIC_PREFIX
  value: {{ .Values.topicPrefix | quote }}
- name: SHOPSTREAM_REDIS_PREFIX
  value: {{ .Values.redisKeyPrefix | quote }}
- name: SHOPSTREAM_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: SHOPSTREAM_HTTP_HOST
  value: "0.0.0.0"
- name: SHOPSTREAM_STATE_DIR
  value: /var/lib/shopstream
{{- if ne .Values.config.overlay "none" }}
- name: SHOPSTREAM_TOPOLOGY_OVERLAY
  value: /etc/shopstream/config/overlay.yaml
{{- end }}
- name: SHOPSTREAM_ORDERS_POLICY
  value: /etc/shopstream/config/orders_policy.yaml
- name: SHOPSTREAM_RETURNS_POLICY
  value: /etc/shopstream/config/returns_policy.yaml
- name: SHOPSTREAM_SHOP_WRITER_CONFIG
  value: /etc/shopstream/config/shop_writer.yaml
- name: SHOPSTREAM_MAPPINGS_DIR
  value: /etc/shopstream/config/mappings
{{- end -}}

{{/* (dict "root" $ "adminPort" N "extraEnv" map) */}}
{{- define "shopstream.componentEnv" -}}
- name: {{ include "shopstream.env.adminPort" .root }}
  value: {{ .adminPort | quote }}
{{- range $name, $value := .extraEnv }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Volumes every pod mounts: config, state dir, /tmp (read-only root filesystem), Kafka CA. */}}
{{- define "shopstream.volumes" -}}
{{ include "shopstream.configVolume" (dict "root" . "name" (include "shopstream.fullname" .)) }}
- name: state
  emptyDir:
    sizeLimit: {{ .Values.stateDirSizeLimit }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.stateDirSizeLimit }}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
    items:
      - {key: {{ .Values.kafka.tls.caKey }}, path: {{ .Values.kafka.tls.caKey }}}
{{- end }}
{{- end -}}

{{- define "shopstream.volumeMounts" -}}
- {name: config, mountPath: /etc/shopstream/config, readOnly: true}
- {name: state, mountPath: /var/lib/shopstream}
- {name: tmp, mountPath: /tmp}
{{- if .Values.kafka.tls.caSecret }}
- {name: kafka-ca, mountPath: /etc/shopstream/kafka-ca, readOnly: true}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by every workload. (dict "root" $ "component" "x") */}}
{{- define "shopstream.podSpecCommon" -}}
{{- $root := .root -}}
serviceAccountName: {{ .serviceAccount | default (include "shopstream.serviceAccountName" $root) }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $root.Values.topologySpread }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "shopstream.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{/* Pod template metadata: labels + the config checksum that rolls the pods on a config change. */}}
{{- define "shopstream.podMetadata" -}}
labels:
  {{- include "shopstream.labels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include "shopstream.configData" .root | sha256sum }}
  {{- if .root.Values.secrets.create }}
  checksum/secret: {{ toJson .root.Values.secrets.values | sha256sum }}
  {{- end }}
  {{- with .root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* A container's probes. (dict "root" $ "live" (dict "path" p "port" n) "ready" (dict ...)) */}}
{{- define "shopstream.probes" -}}
{{- $p := .root.Values.probes -}}
startupProbe:
  httpGet: {path: {{ .live.path }}, port: {{ .live.port }}}
  periodSeconds: 2
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.startupFailureThreshold }}
livenessProbe:
  httpGet: {path: {{ .live.path }}, port: {{ .live.port }}}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
readinessProbe:
  httpGet: {path: {{ .ready.path }}, port: {{ .ready.port }}}
  initialDelaySeconds: {{ $p.initialDelaySeconds }}
  periodSeconds: {{ $p.periodSeconds }}
  timeoutSeconds: {{ $p.timeoutSeconds }}
  failureThreshold: {{ $p.failureThreshold }}
{{- end -}}
