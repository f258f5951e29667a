package migrate

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/renderer"
)

// Options tune a migration.
type Options struct {
	// RootNamespace is the mesh root namespace.
	RootNamespace string
	// TrustDomain spells principals.
	TrustDomain string
	// Namespace is where a manifest that names none is placed, as kubectl
	// places it.
	Namespace string
}

// DefaultOptions returns the options of a default Istio install.
func DefaultOptions() Options {
	r := renderer.DefaultOptions()
	return Options{RootNamespace: r.RootNamespace, TrustDomain: r.TrustDomain, Namespace: r.Namespace}
}

func (o Options) render() renderer.Options {
	r := renderer.DefaultOptions()
	r.RootNamespace, r.TrustDomain, r.Namespace = o.RootNamespace, o.TrustDomain, o.Namespace
	return r
}

// source is the sidecar-mode configuration, indexed.
type source struct {
	dir     string
	objects []*unstructured.Unstructured
	set     *meshspec.Set
	// apps are the application objects: Namespaces, Services, workloads,
	// ServiceAccounts; context for the access model and the rules.
	apps       []*unstructured.Unstructured
	namespaces map[string]*unstructured.Unstructured
	services   map[string]*unstructured.Unstructured // by ns/name
	pods       map[string][]pod                      // by namespace
}

// pod is a workload's pod template.
type pod struct {
	ref    string
	labels map[string]string
}

// podTemplates are where each workload kind keeps its pod template.
var podTemplates = map[schema.GroupKind][]string{
	{Group: "apps", Kind: "Deployment"}:  {"spec", "template", "metadata", "labels"},
	{Group: "apps", Kind: "StatefulSet"}: {"spec", "template", "metadata", "labels"},
	{Group: "apps", Kind: "DaemonSet"}:   {"spec", "template", "metadata", "labels"},
	{Group: "apps", Kind: "ReplicaSet"}:  {"spec", "template", "metadata", "labels"},
	{Group: "batch", Kind: "Job"}:        {"spec", "template", "metadata", "labels"},
	{Group: "batch", Kind: "CronJob"}:    {"spec", "jobTemplate", "spec", "template", "metadata", "labels"},
	{Kind: "Pod"}:                        {"metadata", "labels"},
}

// load reads dir with the renderer's loader: .yaml, .yml and .json files,
// Lists unpacked, each object with its file and line.
func load(dir string, opts Options) (*source, error) {
	b, err := renderer.Render(dir, opts.render())
	if err != nil {
		return nil, err
	}
	if n := len(b.Spec.Namespaces) + len(b.Spec.Services) + len(b.Spec.Rollouts); n > 0 {
		return nil, fmt.Errorf("%s holds %d meshcd spec documents: migrate reads a sidecar-mode Istio configuration; point it at the manifests, not at a spec repository", dir, n)
	}
	s := &source{dir: dir, set: b.Spec, objects: b.Spec.Manifests, namespaces: map[string]*unstructured.Unstructured{},
		services: map[string]*unstructured.Unstructured{}, pods: map[string][]pod{}}
	for _, o := range s.objects {
		gk := o.GroupVersionKind().GroupKind()
		switch {
		case gk == ambient.NamespaceGK:
			s.namespaces[o.GetName()] = o
		case gk == ambient.ServiceGK:
			s.services[o.GetNamespace()+"/"+o.GetName()] = o
		default:
			if path, ok := podTemplates[gk]; ok {
				labels, _, _ := unstructured.NestedStringMap(o.Object, path...)
				s.pods[o.GetNamespace()] = append(s.pods[o.GetNamespace()], pod{ref: o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName(), labels: labels})
			}
		}
		if isApp(gk) {
			s.apps = append(s.apps, o)
		}
	}
	return s, nil
}

// isApp reports whether gk belongs to the application rather than the
// mesh: every kind outside Istio's and Gateway API's groups.
func isApp(gk schema.GroupKind) bool {
	return !strings.HasSuffix(gk.Group, ".istio.io") && gk.Group != ambient.GatewayGK.Group
}

// origin is where o was read from, relative to the source directory.
func (s *source) origin(o *unstructured.Unstructured) meshspec.Position {
	pos, _ := s.set.Origin(meshspec.RefOf(o))
	return pos
}

// meshNamespaces are the namespaces the move enrolls: those holding
// workloads or Services, but the root namespace.
func (s *source) meshNamespaces(root string) []string {
	seen := map[string]bool{}
	for ns := range s.pods {
		seen[ns] = true
	}
	for _, svc := range s.services {
		seen[svc.GetNamespace()] = true
	}
	delete(seen, root)
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// serviceOf resolves a VirtualService or DestinationRule host written in
// namespace ns to a Service of the source: a short name, name.ns,
// name.ns.svc or name.ns.svc.<domain>.
func (s *source) serviceOf(host, ns string) *unstructured.Unstructured {
	parts := strings.Split(host, ".")
	switch {
	case len(parts) == 1:
		return s.services[ns+"/"+host]
	case len(parts) == 2 || len(parts) >= 3 && parts[2] == "svc":
		return s.services[parts[1]+"/"+parts[0]]
	}
	return nil
}

// selected lists the pods of namespace ns a selector picks; nil selects
// every pod.
func (s *source) selected(ns string, selector map[string]string) []pod {
	var out []pod
	for _, p := range s.pods[ns] {
		if selects(selector, p.labels) {
			out = append(out, p)
		}
	}
	return out
}

// servicePods lists the pods a Service selects.
func (s *source) servicePods(svc *unstructured.Unstructured) []pod {
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	if len(sel) == 0 {
		return nil
	}
	return s.selected(svc.GetNamespace(), sel)
}

// servicesCovering lists the Services of ns whose pods the selector picks,
// sorted; covered says whether together they hold every pod it picks.
func (s *source) servicesCovering(ns string, selector map[string]string) (names []string, covered bool) {
	picked := map[string]bool{}
	for _, p := range s.selected(ns, selector) {
		picked[p.ref] = true
	}
	inAny := map[string]bool{}
	for key, svc := range s.services {
		if svc.GetNamespace() != ns {
			continue
		}
		pods := s.servicePods(svc)
		all := len(pods) > 0
		for _, p := range pods {
			all = all && picked[p.ref]
		}
		if all {
			names = append(names, strings.TrimPrefix(key, ns+"/"))
			for _, p := range pods {
				inAny[p.ref] = true
			}
		}
	}
	sort.Strings(names)
	return names, len(picked) > 0 && len(inAny) == len(picked)
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}
