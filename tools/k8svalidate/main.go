// Command k8svalidate checks Kubernetes manifests (multi-document YAML, e.g. `helm template`
// output) against the Kubernetes API's Go types, offline.
//
// Every document is decoded into the Go type of its apiVersion/kind (k8s.io/api, and
// github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring for ServiceMonitor
// and PrometheusRule) with strict decoding: an unknown field, a duplicate field or a value of
// the wrong type is an error that names the file, the document, kind/name and the field path.
// An apiVersion/kind it does not know is an error too (fail closed).
//
// On top of the structure it checks what a schema cannot see across fields and objects:
// names and labels are valid, a workload's selector matches its pod template's labels, every
// Service / PodDisruptionBudget selector selects some rendered pod template, named ports used
// by probes and Service targetPorts exist, volume mounts refer to declared volumes, env names
// are valid and unique, fieldRef paths are ones the API accepts, a StatefulSet's serviceName is
// a rendered headless Service, a ServiceMonitor selects a rendered Service and uses its port
// names, and PrometheusRule rules are well-formed (expressions themselves are left to promtool).
//
// Usage: k8svalidate FILE... ('-' reads standard input). Exit 0 when all is valid, 1 when
// anything is invalid (one line per problem on stderr), 2 on usage errors.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// known maps "apiVersion/kind" to a constructor of its Go type.
var known = map[string]func() any{
	"v1/ConfigMap":                             func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                                func() any { return &corev1.Secret{} },
	"v1/Service":                               func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                        func() any { return &corev1.ServiceAccount{} },
	"v1/Pod":                                   func() any { return &corev1.Pod{} },
	"v1/PersistentVolumeClaim":                 func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/StatefulSet":                      func() any { return &appsv1.StatefulSet{} },
	"apps/v1/Deployment":                       func() any { return &appsv1.Deployment{} },
	"apps/v1/DaemonSet":                        func() any { return &appsv1.DaemonSet{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":       func() any { return &networkingv1.NetworkPolicy{} },
	"rbac.authorization.k8s.io/v1/Role":        func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return &rbacv1.RoleBinding{} },
	"monitoring.coreos.com/v1/ServiceMonitor":  func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PodMonitor":      func() any { return &monitoringv1.PodMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule":  func() any { return &monitoringv1.PrometheusRule{} },
}

// doc is one decoded manifest and where it came from.
type doc struct {
	file  string
	index int // 1-based document number within the file
	kind  string
	name  string
	obj   any
}

func (d *doc) where() string {
	return fmt.Sprintf("%s: document %d (%s/%s)", d.file, d.index, d.kind, d.name)
}

type problems struct{ list []string }

func (p *problems) add(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: k8svalidate FILE... ('-' = stdin)")
		os.Exit(2)
	}
	var probs problems
	var docs []*doc
	for _, file := range os.Args[1:] {
		var r io.Reader
		if file == "-" {
			r = os.Stdin
			file = "<stdin>"
		} else {
			f, err := os.Open(file)
			if err != nil {
				fmt.Fprintf(os.Stderr, "k8svalidate: %v\n", err)
				os.Exit(2)
			}
			defer f.Close()
			r = f
		}
		docs = append(docs, decodeFile(file, r, &probs)...)
	}
	if len(docs) == 0 && len(probs.list) == 0 {
		probs.add("no Kubernetes objects found in %s", strings.Join(os.Args[1:], ", "))
	}
	checkObjects(docs, &probs)
	if len(probs.list) > 0 {
		for _, p := range probs.list {
			fmt.Fprintln(os.Stderr, p)
		}
		fmt.Fprintf(os.Stderr, "k8svalidate: %d problem(s) in %d object(s)\n", len(probs.list), len(docs))
		os.Exit(1)
	}
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[d.kind]++
	}
	var parts []string
	for k, n := range kinds {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	fmt.Printf("ok: %d object(s): %s\n", len(docs), strings.Join(parts, " "))
}

// decodeFile splits a multi-document YAML stream and strictly decodes each document.
func decodeFile(file string, r io.Reader, probs *problems) []*doc {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []*doc
	for index := 1; ; index++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			probs.add("%s: document %d: cannot read YAML: %v", file, index, err)
			break
		}
		if isBlank(raw) {
			index--
			continue
		}
		d := decodeDoc(file, index, raw, probs)
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

// isBlank: only whitespace, comments and document markers.
func isBlank(raw []byte) bool {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' || string(t) == "---" {
			continue
		}
		return false
	}
	return true
}

func decodeDoc(file string, index int, raw []byte, probs *problems) *doc {
	// YAMLToJSONStrict rejects duplicate keys at the YAML level.
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		probs.add("%s: document %d: invalid YAML: %v", file, index, err)
		return nil
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		probs.add("%s: document %d: not a Kubernetes object: %v", file, index, err)
		return nil
	}
	d := &doc{file: file, index: index, kind: head.Kind, name: head.Metadata.Name}
	if head.APIVersion == "" || head.Kind == "" {
		probs.add("%s: apiVersion and kind are required", d.where())
		return nil
	}
	ctor, ok := known[head.APIVersion+"/"+head.Kind]
	if !ok {
		probs.add("%s: unknown apiVersion/kind %s/%s (not in this validator's type table)", d.where(), head.APIVersion, head.Kind)
		return nil
	}
	obj := ctor()
	strictErrs, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		probs.add("%s: %v", d.where(), err)
		return nil
	}
	for _, e := range strictErrs {
		probs.add("%s: %v", d.where(), e)
	}
	// With only unknown/duplicate fields the object is still decoded: keep it for the
	// cross-object checks, so that one typo does not cascade into unrelated errors.
	d.obj = obj
	return d
}

// ---- semantic checks --------------------------------------------------------------------

type podTemplate struct {
	owner  *doc
	labels map[string]string
	spec   *corev1.PodSpec
}

func checkObjects(docs []*doc, probs *problems) {
	var pods []podTemplate
	services := map[string]*corev1.Service{}
	serviceDocs := map[string]*doc{}
	configMaps := map[string]*corev1.ConfigMap{}
	seen := map[string]*doc{}

	for _, d := range docs {
		meta := objectMeta(d.obj)
		key := d.kind + "/" + meta.GetNamespace() + "/" + meta.GetName()
		if prev, dup := seen[key]; dup {
			probs.add("%s: duplicate object, also %s", d.where(), prev.where())
		}
		seen[key] = d
		checkMeta(d, meta, probs)
		switch o := d.obj.(type) {
		case *appsv1.StatefulSet:
			pods = append(pods, podTemplate{d, o.Spec.Template.Labels, &o.Spec.Template.Spec})
		case *appsv1.Deployment:
			pods = append(pods, podTemplate{d, o.Spec.Template.Labels, &o.Spec.Template.Spec})
		case *appsv1.DaemonSet:
			pods = append(pods, podTemplate{d, o.Spec.Template.Labels, &o.Spec.Template.Spec})
		case *corev1.Pod:
			pods = append(pods, podTemplate{d, o.Labels, &o.Spec})
		case *corev1.Service:
			services[o.Name] = o
			serviceDocs[o.Name] = d
		case *corev1.ConfigMap:
			configMaps[o.Name] = o
		}
	}

	for _, d := range docs {
		switch o := d.obj.(type) {
		case *appsv1.StatefulSet:
			checkSelector(d, "spec.selector", o.Spec.Selector, o.Spec.Template.Labels, probs)
			if o.Spec.Replicas != nil && *o.Spec.Replicas < 0 {
				probs.add("%s: spec.replicas must be >= 0", d.where())
			}
			switch o.Spec.PodManagementPolicy {
			case "", appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement:
			default:
				probs.add("%s: spec.podManagementPolicy %q is not OrderedReady or Parallel", d.where(), o.Spec.PodManagementPolicy)
			}
			if o.Spec.ServiceName != "" {
				svc, ok := services[o.Spec.ServiceName]
				if !ok {
					probs.add("%s: spec.serviceName %q is not a rendered Service", d.where(), o.Spec.ServiceName)
				} else if svc.Spec.ClusterIP != corev1.ClusterIPNone {
					probs.add("%s: spec.serviceName %q is not a headless Service (clusterIP: None)", d.where(), o.Spec.ServiceName)
				}
			}
			checkPodSpec(d, "spec.template.spec", &o.Spec.Template.Spec, configMaps, probs)
		case *appsv1.Deployment:
			checkSelector(d, "spec.selector", o.Spec.Selector, o.Spec.Template.Labels, probs)
			checkPodSpec(d, "spec.template.spec", &o.Spec.Template.Spec, configMaps, probs)
		case *appsv1.DaemonSet:
			checkSelector(d, "spec.selector", o.Spec.Selector, o.Spec.Template.Labels, probs)
			checkPodSpec(d, "spec.template.spec", &o.Spec.Template.Spec, configMaps, probs)
		case *corev1.Pod:
			checkPodSpec(d, "spec", &o.Spec, configMaps, probs)
		case *corev1.Service:
			checkService(d, o, pods, probs)
		case *corev1.ConfigMap:
			for k := range o.Data {
				for _, msg := range validation.IsConfigMapKey(k) {
					probs.add("%s: data key %q: %s", d.where(), k, msg)
				}
			}
		case *policyv1.PodDisruptionBudget:
			if (o.Spec.MinAvailable == nil) == (o.Spec.MaxUnavailable == nil) {
				probs.add("%s: spec: exactly one of minAvailable and maxUnavailable must be set", d.where())
			}
			for field, v := range map[string]*intstr.IntOrString{"minAvailable": o.Spec.MinAvailable, "maxUnavailable": o.Spec.MaxUnavailable} {
				if v != nil {
					checkIntOrPercent(d, "spec."+field, *v, probs)
				}
			}
			if o.Spec.Selector == nil {
				probs.add("%s: spec.selector is required", d.where())
			} else if !selectsSomePod(o.Spec.Selector, pods) {
				probs.add("%s: spec.selector %s selects no rendered pod template", d.where(), metav1.FormatLabelSelector(o.Spec.Selector))
			}
		case *monitoringv1.ServiceMonitor:
			checkServiceMonitor(d, o, services, serviceDocs, probs)
		case *monitoringv1.PrometheusRule:
			checkPrometheusRule(d, o, probs)
		}
	}
}

func objectMeta(obj any) metav1.Object {
	if m, ok := obj.(metav1.Object); ok {
		return m
	}
	return &metav1.ObjectMeta{}
}

func checkMeta(d *doc, meta metav1.Object, probs *problems) {
	name := meta.GetName()
	if name == "" {
		probs.add("%s: metadata.name is required", d.where())
	} else {
		var msgs []string
		if d.kind == "Service" {
			msgs = validation.IsDNS1035Label(name)
		} else {
			msgs = validation.IsDNS1123Subdomain(name)
		}
		for _, m := range msgs {
			probs.add("%s: metadata.name %q: %s", d.where(), name, m)
		}
		if d.kind == "StatefulSet" && len(name) > 52 {
			// Pods get the controller-revision-hash label <name>-<hash>, which must fit in 63.
			probs.add("%s: metadata.name %q is longer than 52 characters (StatefulSet pod labels would overflow)", d.where(), name)
		}
	}
	if ns := meta.GetNamespace(); ns != "" {
		for _, m := range validation.IsDNS1123Label(ns) {
			probs.add("%s: metadata.namespace %q: %s", d.where(), ns, m)
		}
	}
	checkLabels(d, "metadata.labels", meta.GetLabels(), probs)
	for k := range meta.GetAnnotations() {
		for _, m := range validation.IsQualifiedName(strings.ToLower(k)) {
			probs.add("%s: metadata.annotations key %q: %s", d.where(), k, m)
		}
	}
}

func checkLabels(d *doc, field string, l map[string]string, probs *problems) {
	for k, v := range l {
		for _, m := range validation.IsQualifiedName(k) {
			probs.add("%s: %s key %q: %s", d.where(), field, k, m)
		}
		for _, m := range validation.IsValidLabelValue(v) {
			probs.add("%s: %s[%q] value %q: %s", d.where(), field, k, v, m)
		}
	}
}

func checkSelector(d *doc, field string, sel *metav1.LabelSelector, podLabels map[string]string, probs *problems) {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		probs.add("%s: %s is required and must not be empty", d.where(), field)
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		probs.add("%s: %s: %v", d.where(), field, err)
		return
	}
	checkLabels(d, "spec.template.metadata.labels", podLabels, probs)
	if !s.Matches(labels.Set(podLabels)) {
		probs.add("%s: %s %s does not match the pod template's labels %v", d.where(), field, s.String(), podLabels)
	}
}

func selectsSomePod(sel *metav1.LabelSelector, pods []podTemplate) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return false
	}
	for _, p := range pods {
		if s.Matches(labels.Set(p.labels)) {
			return true
		}
	}
	return false
}

var allowedFieldPaths = map[string]bool{
	"metadata.name": true, "metadata.namespace": true, "metadata.uid": true,
	"spec.nodeName": true, "spec.serviceAccountName": true,
	"status.hostIP": true, "status.hostIPs": true, "status.podIP": true, "status.podIPs": true,
}

var labelOrAnnotationPath = regexp.MustCompile(`^metadata\.(labels|annotations)\['[^']+'\]$`)

func checkPodSpec(d *doc, field string, spec *corev1.PodSpec, configMaps map[string]*corev1.ConfigMap, probs *problems) {
	if len(spec.Containers) == 0 {
		probs.add("%s: %s.containers must not be empty", d.where(), field)
	}
	volumes := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		f := fmt.Sprintf("%s.volumes[%d]", field, i)
		for _, m := range validation.IsDNS1123Label(v.Name) {
			probs.add("%s: %s.name %q: %s", d.where(), f, v.Name, m)
		}
		if _, dup := volumes[v.Name]; dup {
			probs.add("%s: %s.name %q is declared twice", d.where(), f, v.Name)
		}
		volumes[v.Name] = v
		if n := countVolumeSources(&v.VolumeSource); n != 1 {
			probs.add("%s: %s must have exactly one volume source, has %d", d.where(), f, n)
		}
		if cm := v.ConfigMap; cm != nil {
			rendered, ok := configMaps[cm.Name]
			if !ok && (cm.Optional == nil || !*cm.Optional) {
				probs.add("%s: %s.configMap.name %q is not a rendered ConfigMap", d.where(), f, cm.Name)
			}
			for j, item := range cm.Items {
				if ok {
					if _, has := rendered.Data[item.Key]; !has {
						probs.add("%s: %s.configMap.items[%d].key %q is not in ConfigMap %q", d.where(), f, j, item.Key, cm.Name)
					}
				}
			}
		}
		if s := v.Secret; s != nil && s.SecretName == "" {
			probs.add("%s: %s.secret.secretName is required", d.where(), f)
		}
	}
	if spec.TerminationGracePeriodSeconds != nil && *spec.TerminationGracePeriodSeconds < 0 {
		probs.add("%s: %s.terminationGracePeriodSeconds must be >= 0", d.where(), field)
	}
	names := map[string]bool{}
	all := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for i := range all {
		c := &all[i]
		f := fmt.Sprintf("%s.containers[%d]", field, i-len(spec.InitContainers))
		if i < len(spec.InitContainers) {
			f = fmt.Sprintf("%s.initContainers[%d]", field, i)
		}
		for _, m := range validation.IsDNS1123Label(c.Name) {
			probs.add("%s: %s.name %q: %s", d.where(), f, c.Name, m)
		}
		if names[c.Name] {
			probs.add("%s: %s.name %q is used twice", d.where(), f, c.Name)
		}
		names[c.Name] = true
		if strings.TrimSpace(c.Image) == "" {
			probs.add("%s: %s.image is required", d.where(), f)
		}
		switch c.ImagePullPolicy {
		case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		default:
			probs.add("%s: %s.imagePullPolicy %q is not Always, IfNotPresent or Never", d.where(), f, c.ImagePullPolicy)
		}
		ports := map[string]int32{}
		numbers := map[int32]bool{}
		for j, p := range c.Ports {
			pf := fmt.Sprintf("%s.ports[%d]", f, j)
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				probs.add("%s: %s.containerPort %d is out of range", d.where(), pf, p.ContainerPort)
			}
			numbers[p.ContainerPort] = true
			if p.Name != "" {
				for _, m := range validation.IsValidPortName(p.Name) {
					probs.add("%s: %s.name %q: %s", d.where(), pf, p.Name, m)
				}
				if _, dup := ports[p.Name]; dup {
					probs.add("%s: %s.name %q is used twice", d.where(), pf, p.Name)
				}
				ports[p.Name] = p.ContainerPort
			}
			switch p.Protocol {
			case "", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
			default:
				probs.add("%s: %s.protocol %q is invalid", d.where(), pf, p.Protocol)
			}
		}
		for name, probe := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
			if probe == nil {
				continue
			}
			pf := f + "." + name
			if i < len(spec.InitContainers) {
				probs.add("%s: %s is not allowed on init containers", d.where(), pf)
			}
			n := 0
			if h := probe.HTTPGet; h != nil {
				n++
				checkProbePort(d, pf+".httpGet.port", h.Port, ports, numbers, probs)
				if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
					probs.add("%s: %s.httpGet.path %q must start with /", d.where(), pf, h.Path)
				}
			}
			if t := probe.TCPSocket; t != nil {
				n++
				checkProbePort(d, pf+".tcpSocket.port", t.Port, ports, numbers, probs)
			}
			if probe.Exec != nil {
				n++
			}
			if probe.GRPC != nil {
				n++
			}
			if n != 1 {
				probs.add("%s: %s must have exactly one handler (httpGet, tcpSocket, exec, grpc), has %d", d.where(), pf, n)
			}
			if name != "readinessProbe" && probe.SuccessThreshold > 1 {
				probs.add("%s: %s.successThreshold must be 1", d.where(), pf)
			}
		}
		envNames := map[string]bool{}
		for j, e := range c.Env {
			ef := fmt.Sprintf("%s.env[%d]", f, j)
			for _, m := range validation.IsEnvVarName(e.Name) {
				probs.add("%s: %s.name %q: %s", d.where(), ef, e.Name, m)
			}
			if envNames[e.Name] {
				probs.add("%s: %s.name %q is set twice", d.where(), ef, e.Name)
			}
			envNames[e.Name] = true
			if vf := e.ValueFrom; vf != nil {
				if e.Value != "" {
					probs.add("%s: %s: value and valueFrom are mutually exclusive", d.where(), ef)
				}
				n := 0
				if vf.FieldRef != nil {
					n++
					p := vf.FieldRef.FieldPath
					if !allowedFieldPaths[p] && !labelOrAnnotationPath.MatchString(p) {
						probs.add("%s: %s.valueFrom.fieldRef.fieldPath %q is not supported by the downward API", d.where(), ef, p)
					}
				}
				if vf.ResourceFieldRef != nil {
					n++
				}
				if r := vf.ConfigMapKeyRef; r != nil {
					n++
					if cm, ok := configMaps[r.Name]; ok {
						if _, has := cm.Data[r.Key]; !has && (r.Optional == nil || !*r.Optional) {
							probs.add("%s: %s.valueFrom.configMapKeyRef: key %q is not in ConfigMap %q", d.where(), ef, r.Key, r.Name)
						}
					} else if r.Optional == nil || !*r.Optional {
						probs.add("%s: %s.valueFrom.configMapKeyRef: ConfigMap %q is not rendered", d.where(), ef, r.Name)
					}
				}
				if r := vf.SecretKeyRef; r != nil {
					n++
					if r.Name == "" || r.Key == "" {
						probs.add("%s: %s.valueFrom.secretKeyRef needs name and key", d.where(), ef)
					}
				}
				if n != 1 {
					probs.add("%s: %s.valueFrom must have exactly one source, has %d", d.where(), ef, n)
				}
			}
		}
		mountPaths := map[string]bool{}
		for j, m := range c.VolumeMounts {
			mf := fmt.Sprintf("%s.volumeMounts[%d]", f, j)
			if _, ok := volumes[m.Name]; !ok {
				probs.add("%s: %s.name %q is not a declared volume", d.where(), mf, m.Name)
			}
			if !strings.HasPrefix(m.MountPath, "/") {
				probs.add("%s: %s.mountPath %q must be absolute", d.where(), mf, m.MountPath)
			}
			if mountPaths[m.MountPath] {
				probs.add("%s: %s.mountPath %q is mounted twice", d.where(), mf, m.MountPath)
			}
			mountPaths[m.MountPath] = true
		}
		for res, limit := range c.Resources.Limits {
			if req, ok := c.Resources.Requests[res]; ok && req.Cmp(limit) > 0 {
				probs.add("%s: %s.resources.requests.%s %s exceeds the limit %s", d.where(), f, res, req.String(), limit.String())
			}
		}
		if sc := c.SecurityContext; sc != nil {
			if sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				probs.add("%s: %s.securityContext: runAsNonRoot with runAsUser 0", d.where(), f)
			}
			if sc.Privileged != nil && *sc.Privileged && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
				probs.add("%s: %s.securityContext: privileged with allowPrivilegeEscalation false", d.where(), f)
			}
		}
	}
	if sc := spec.SecurityContext; sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot && sc.RunAsUser != nil && *sc.RunAsUser == 0 {
		probs.add("%s: %s.securityContext: runAsNonRoot with runAsUser 0", d.where(), field)
	}
}

func checkProbePort(d *doc, field string, port intstr.IntOrString, named map[string]int32, numbers map[int32]bool, probs *problems) {
	if port.Type == intstr.String {
		if _, ok := named[port.StrVal]; !ok {
			probs.add("%s: %s %q is not a named port of the container", d.where(), field, port.StrVal)
		}
		return
	}
	if port.IntVal < 1 || port.IntVal > 65535 {
		probs.add("%s: %s %d is out of range", d.where(), field, port.IntVal)
	} else if len(numbers) > 0 && !numbers[port.IntVal] {
		probs.add("%s: %s %d is not a declared container port", d.where(), field, port.IntVal)
	}
}

func countVolumeSources(s *corev1.VolumeSource) int {
	js, err := yaml.Marshal(s)
	if err != nil {
		return 0
	}
	var m map[string]any
	if err := yaml.Unmarshal(js, &m); err != nil {
		return 0
	}
	return len(m)
}

func checkIntOrPercent(d *doc, field string, v intstr.IntOrString, probs *problems) {
	if v.Type == intstr.Int {
		if v.IntVal < 0 {
			probs.add("%s: %s must be >= 0", d.where(), field)
		}
		return
	}
	if !regexp.MustCompile(`^[0-9]+%$`).MatchString(v.StrVal) {
		probs.add("%s: %s %q must be an integer or a percentage", d.where(), field, v.StrVal)
	}
}

func checkService(d *doc, svc *corev1.Service, pods []podTemplate, probs *problems) {
	switch svc.Spec.Type {
	case "", corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName:
	default:
		probs.add("%s: spec.type %q is invalid", d.where(), svc.Spec.Type)
	}
	if len(svc.Spec.Ports) == 0 && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		probs.add("%s: spec.ports must not be empty", d.where())
	}
	names := map[string]bool{}
	for i, p := range svc.Spec.Ports {
		f := fmt.Sprintf("spec.ports[%d]", i)
		if len(svc.Spec.Ports) > 1 && p.Name == "" {
			probs.add("%s: %s.name is required when a Service has more than one port", d.where(), f)
		}
		if p.Name != "" {
			for _, m := range validation.IsDNS1123Label(p.Name) {
				probs.add("%s: %s.name %q: %s", d.where(), f, p.Name, m)
			}
			if names[p.Name] {
				probs.add("%s: %s.name %q is used twice", d.where(), f, p.Name)
			}
			names[p.Name] = true
		}
		if p.Port < 1 || p.Port > 65535 {
			probs.add("%s: %s.port %d is out of range", d.where(), f, p.Port)
		}
	}
	if len(svc.Spec.Selector) == 0 {
		return
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var matched []podTemplate
	for _, p := range pods {
		if sel.Matches(labels.Set(p.labels)) {
			matched = append(matched, p)
		}
	}
	if len(matched) == 0 {
		probs.add("%s: spec.selector %s selects no rendered pod template", d.where(), sel.String())
		return
	}
	for i, p := range svc.Spec.Ports {
		tp := p.TargetPort
		if tp.Type != intstr.String {
			continue
		}
		for _, pod := range matched {
			found := false
			for _, c := range pod.spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == tp.StrVal {
						found = true
					}
				}
			}
			if !found {
				probs.add("%s: spec.ports[%d].targetPort %q is not a container port name in %s", d.where(), i, tp.StrVal, pod.owner.where())
			}
		}
	}
}

var promDuration = regexp.MustCompile(`^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$`)

func checkDuration(d *doc, field, value string, probs *problems) {
	if value == "" {
		return
	}
	if !promDuration.MatchString(value) {
		probs.add("%s: %s %q is not a Prometheus duration", d.where(), field, value)
	}
}

func checkServiceMonitor(d *doc, sm *monitoringv1.ServiceMonitor, services map[string]*corev1.Service, serviceDocs map[string]*doc, probs *problems) {
	if len(sm.Spec.Endpoints) == 0 {
		probs.add("%s: spec.endpoints must not be empty", d.where())
	}
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		probs.add("%s: spec.selector: %v", d.where(), err)
		return
	}
	if sel.Empty() {
		probs.add("%s: spec.selector is empty (would select every Service)", d.where())
		return
	}
	var matched []*corev1.Service
	for _, svc := range services {
		if sel.Matches(labels.Set(svc.Labels)) {
			matched = append(matched, svc)
		}
	}
	if len(matched) == 0 {
		probs.add("%s: spec.selector %s selects no rendered Service", d.where(), sel.String())
	}
	for i, ep := range sm.Spec.Endpoints {
		f := fmt.Sprintf("spec.endpoints[%d]", i)
		checkDuration(d, f+".interval", string(ep.Interval), probs)
		checkDuration(d, f+".scrapeTimeout", string(ep.ScrapeTimeout), probs)
		if ep.Path != "" && !strings.HasPrefix(ep.Path, "/") {
			probs.add("%s: %s.path %q must start with /", d.where(), f, ep.Path)
		}
		if ep.Port == "" && ep.TargetPort == nil {
			probs.add("%s: %s needs port (a Service port name) or targetPort", d.where(), f)
		}
		if ep.Port != "" {
			for _, svc := range matched {
				found := false
				for _, p := range svc.Spec.Ports {
					if p.Name == ep.Port {
						found = true
					}
				}
				if !found {
					probs.add("%s: %s.port %q is not a port name of %s", d.where(), f, ep.Port, serviceDocs[svc.Name].where())
				}
			}
		}
	}
}

func checkPrometheusRule(d *doc, pr *monitoringv1.PrometheusRule, probs *problems) {
	if len(pr.Spec.Groups) == 0 {
		probs.add("%s: spec.groups must not be empty", d.where())
	}
	groups := map[string]bool{}
	for i, g := range pr.Spec.Groups {
		f := fmt.Sprintf("spec.groups[%d]", i)
		if g.Name == "" {
			probs.add("%s: %s.name is required", d.where(), f)
		}
		if groups[g.Name] {
			probs.add("%s: %s.name %q is used twice", d.where(), f, g.Name)
		}
		groups[g.Name] = true
		if g.Interval != nil {
			checkDuration(d, f+".interval", string(*g.Interval), probs)
		}
		if len(g.Rules) == 0 {
			probs.add("%s: %s.rules must not be empty", d.where(), f)
		}
		for j, r := range g.Rules {
			rf := fmt.Sprintf("%s.rules[%d]", f, j)
			if (r.Alert == "") == (r.Record == "") {
				probs.add("%s: %s must set exactly one of alert and record", d.where(), rf)
			}
			if strings.TrimSpace(r.Expr.String()) == "" {
				probs.add("%s: %s.expr is required", d.where(), rf)
			}
			if r.For != nil {
				checkDuration(d, rf+".for", string(*r.For), probs)
			}
			if r.Record != "" && len(r.Annotations) > 0 {
				probs.add("%s: %s: recording rules have no annotations", d.where(), rf)
			}
			if r.Alert != "" {
				if _, ok := r.Labels["severity"]; !ok {
					probs.add("%s: %s (%s) has no severity label", d.where(), rf, r.Alert)
				}
			}
		}
	}
}
