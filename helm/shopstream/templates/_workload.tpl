{{/*
One long-running component: Deployment (+ PDB, + optional HPA, + headless metrics Service).
(dict "root" $ "component" name "spec" values "args" list "httpPort" N-or-0
      "extraEnv" list-yaml "extraVolumes" yaml "extraMounts" yaml "live" dict "ready" dict)
*/}}
{{- define "shopstream.workload" -}}
{{- $root := .root -}}
{{- $spec := .spec -}}
{{- $name := include "shopstream.componentName" (dict "root" $root "component" .component) -}}
{{- $sel := dict "root" $root "component" .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "shopstream.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not $spec.autoscaling.enabled }}
  replicas: {{ $spec.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "shopstream.selectorLabels" $sel | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      {{- include "shopstream.podMetadata" $sel | nindent 6 }}
    spec:
      {{- include "shopstream.podSpecCommon" $sel | nindent 6 }}
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      containers:
        - name: {{ .component }}
          image: {{ include "shopstream.image" $root }}
          imagePullPolicy: {{ include "shopstream.pullPolicy" $root }}
          args: {{ toJson .args }}
          ports:
            {{- if .httpPort }}
            - {name: http, containerPort: {{ .httpPort }}, protocol: TCP}
            {{- end }}
            - {name: admin, containerPort: {{ $spec.adminPort }}, protocol: TCP}
          env:
            {{- include "shopstream.commonEnv" $root | nindent 12 }}
            {{- include "shopstream.componentEnv" (dict "root" $root "adminPort" $spec.adminPort "extraEnv" $spec.extraEnv) | nindent 12 }}
            {{- with .extraEnv }}
            {{- . | nindent 12 }}
            {{- end }}
          {{- include "shopstream.probes" (dict "root" $root "live" .live "ready" .ready) | nindent 10 }}
          resources:
            {{- toYaml $spec.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "shopstream.volumeMounts" $root | nindent 12 }}
            {{- with .extraMounts }}
            {{- . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "shopstream.volumes" $root | nindent 8 }}
        {{- with .extraVolumes }}
        {{- . | nindent 8 }}
        {{- end }}
---
# Headless Service for the admin port only: what the ServiceMonitor (or an annotation-based
# Prometheus) scrapes. NetworkPolicy lets only the monitoring peers in.
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}-metrics
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "shopstream.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    shopstream.io/metrics: "true"
spec:
  clusterIP: None
  selector:
    {{- include "shopstream.selectorLabels" $sel | nindent 4 }}
  ports:
    - {name: admin, port: {{ $spec.adminPort }}, targetPort: admin, protocol: TCP}
{{- if $spec.pdb.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "shopstream.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if hasKey $spec.pdb "minAvailable" }}
  minAvailable: {{ $spec.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $spec.pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "shopstream.selectorLabels" $sel | nindent 6 }}
{{- end }}
{{- if $spec.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "shopstream.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ $spec.autoscaling.minReplicas }}
  maxReplicas: {{ $spec.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {type: Utilization, averageUtilization: {{ $spec.autoscaling.targetCPUUtilizationPercentage }}}
    {{- with $spec.autoscaling.metrics }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
{{- end -}}
