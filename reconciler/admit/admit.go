package admit

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Policy is what a source may write, from meshcd's own configuration.
type Policy struct {
	// Allow admits kinds refused by default, each spelled Kind.group like
	// kubectl's resource.group ("Secret" for the core group,
	// "Role.rbac.authorization.k8s.io").
	Allow []string
	// Namespaces, when set, are the only namespaces the source may write
	// in; a Namespace object must be one of them.
	Namespaces []string
	// StateNamespace holds meshcd's own state (inventories, status,
	// rollout states): the source may write neither in it nor the
	// Namespace itself, whatever else the policy allows.
	StateNamespace string
}

// Namespaced tells whether a kind's objects live in a namespace, as the
// cluster's REST mapping says.
type Namespaced func(gvk schema.GroupVersionKind) (bool, error)

// The groups and kinds refused by default, whatever their scope.
var (
	refusedGroups = map[string]string{
		"rbac.authorization.k8s.io":    "it grants permissions",
		"admissionregistration.k8s.io": "it intercepts every write to the cluster",
		"apiextensions.k8s.io":         "it changes the cluster's API",
	}
	refusedKinds = map[schema.GroupKind]string{
		{Kind: "Secret"}: "it holds credentials, which do not belong in git",
	}
)

// ParseKind reads a kind spelled Kind.group ("Secret", "Role.rbac.authorization.k8s.io").
func ParseKind(s string) (schema.GroupKind, error) {
	kind, group, _ := strings.Cut(strings.TrimSpace(s), ".")
	if kind == "" || kind[0] < 'A' || kind[0] > 'Z' {
		return schema.GroupKind{}, fmt.Errorf("kind %q: want Kind.group, such as Role.rbac.authorization.k8s.io, or Kind for the core group, such as Secret", s)
	}
	return schema.GroupKind{Group: group, Kind: kind}, nil
}

// Validate checks the policy's spelling.
func (p Policy) Validate() error {
	var errs []error
	for _, a := range p.Allow {
		if _, err := ParseKind(a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Check returns an error naming every object of objs the policy refuses,
// with where it came from and what to do; nil when all pass.
func (p Policy) Check(objs []*unstructured.Unstructured, namespaced Namespaced, origin func(*unstructured.Unstructured) string) error {
	allowed := map[schema.GroupKind]bool{}
	for _, a := range p.Allow {
		if gk, err := ParseKind(a); err == nil {
			allowed[gk] = true
		}
	}
	var refusals []string
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		gk := gvk.GroupKind()
		why := ""
		switch {
		case p.StateNamespace != "" && p.writesState(o, namespaced):
			why = fmt.Sprintf("namespace %q holds meshcd's own state (its inventories, status and rollout states), which no repository may write", p.StateNamespace)
		case allowed[gk]:
		case gk == schema.GroupKind{Kind: "Namespace"}:
		case refusedGroups[gk.Group] != "":
			why = refusedGroups[gk.Group]
		case refusedKinds[gk] != "":
			why = refusedKinds[gk]
		default:
			ns, err := namespaced(gvk)
			switch {
			case err != nil && !meta.IsNoMatchError(err):
				return fmt.Errorf("%s%s %s: the cluster could not say whether its kind is namespaced, nothing applied or pruned: %w", at(origin(o)), spell(gk), name(o), err)
			case err != nil:
				why = fmt.Sprintf("the cluster does not serve it, so whether it is cluster-scoped is unknown (%v); install its CRD first", err)
			case !ns:
				why = "it is cluster-scoped"
			}
		}
		if why == "" && len(p.Namespaces) > 0 {
			if ns, bound := p.namespaceOf(o, namespaced); bound && !slices.Contains(p.Namespaces, ns) {
				why = fmt.Sprintf("namespace %q is outside this source's namespaces (%s)", ns, strings.Join(p.Namespaces, ", "))
			}
		}
		if why == "" {
			continue
		}
		hint := fmt.Sprintf("if this source must manage it, start meshcd with --allow-kind %s", spell(gk))
		switch {
		case strings.Contains(why, "meshcd's own state"):
			hint = "move it to another namespace"
		case strings.HasPrefix(why, "namespace ") || strings.HasPrefix(why, "the cluster does not"):
			hint = "move it out of the repository or change meshcd's configuration"
		}
		refusals = append(refusals, fmt.Sprintf("%s%s %s: refused because %s; %s", at(origin(o)), spell(gk), name(o), why, hint))
	}
	if len(refusals) == 0 {
		return nil
	}
	sort.Strings(refusals)
	return fmt.Errorf("%d objects refused, nothing applied or pruned:\n  %s", len(refusals), strings.Join(refusals, "\n  "))
}

// writesState reports whether o is meshcd's state namespace or lives in it.
func (p Policy) writesState(o *unstructured.Unstructured, namespaced Namespaced) bool {
	ns, bound := p.namespaceOf(o, namespaced)
	return bound && ns == p.StateNamespace
}

// namespaceOf is the namespace an object is written in, the Namespace's
// own name for a Namespace; bound is false for an allowed cluster-scoped
// kind, which no namespace bounds.
func (p Policy) namespaceOf(o *unstructured.Unstructured, namespaced Namespaced) (ns string, bound bool) {
	if o.GroupVersionKind().GroupKind() == (schema.GroupKind{Kind: "Namespace"}) {
		return o.GetName(), true
	}
	if ns := o.GetNamespace(); ns != "" {
		return ns, true
	}
	if isNS, err := namespaced(o.GroupVersionKind()); err != nil || isNS {
		return "default", true // where the API server puts a namespaced object that names none
	}
	return "", false
}

func spell(gk schema.GroupKind) string {
	if gk.Group == "" {
		return gk.Kind
	}
	return gk.Kind + "." + gk.Group
}

func name(o *unstructured.Unstructured) string {
	if ns := o.GetNamespace(); ns != "" {
		return ns + "/" + o.GetName()
	}
	return o.GetName()
}

func at(origin string) string {
	if origin == "" {
		return ""
	}
	return origin + ": "
}
