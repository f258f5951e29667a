package meshspec

import (
	"errors"
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Set is the spec documents and plain manifests of one source, each with the
// position it was read from.
type Set struct {
	Namespaces []*MeshNamespace
	Services   []*MeshService
	Rollouts   []*DataplaneRollout
	// Manifests are the documents of other APIs, passed through as they are.
	Manifests []*unstructured.Unstructured

	docs   map[Ref]*document
	byName map[string]*MeshNamespace // index of Namespaces, rebuilt when it falls behind
}

// Ref identifies one document of a Set.
type Ref struct {
	Group     string
	Kind      string
	Namespace string
	Name      string
}

// Less orders refs by group, kind, namespace and name: the order of
// rendered objects.
func (r Ref) Less(o Ref) bool {
	if r.Group != o.Group {
		return r.Group < o.Group
	}
	if r.Kind != o.Kind {
		return r.Kind < o.Kind
	}
	if r.Namespace != o.Namespace {
		return r.Namespace < o.Namespace
	}
	return r.Name < o.Name
}

// String renders the ref as "Kind namespace/name" or "Kind name".
func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// RefOf returns the ref of a manifest.
func RefOf(obj *unstructured.Unstructured) Ref {
	gv, _ := schema.ParseGroupVersion(obj.GetAPIVersion())
	return Ref{Group: gv.Group, Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// NewSet returns an empty Set.
func NewSet() *Set { return &Set{docs: map[Ref]*document{}} }

// Origin returns where the document ref was read from.
func (s *Set) Origin(ref Ref) (Position, bool) {
	d, ok := s.docs[ref]
	if !ok {
		return Position{}, false
	}
	return d.pos, true
}

// FieldOrigin returns where a field of the document ref was read from, or
// the document's position when the field was not written.
func (s *Set) FieldOrigin(ref Ref, path string) Position {
	d, ok := s.docs[ref]
	if !ok {
		return Position{}
	}
	return d.at(path)
}

// Merge adds the documents of other, which were validated when they were
// loaded, to s. A document present in both is an error naming both places.
func (s *Set) Merge(other *Set) error {
	for _, o := range other.Namespaces {
		if err := s.add(nsRef(o.Name), other.docs[nsRef(o.Name)]); err != nil {
			return err
		}
		s.Namespaces = append(s.Namespaces, o)
	}
	for _, o := range other.Services {
		if err := s.add(svcRef(o.Namespace, o.Name), other.docs[svcRef(o.Namespace, o.Name)]); err != nil {
			return err
		}
		s.Services = append(s.Services, o)
	}
	for _, o := range other.Rollouts {
		if err := s.add(rolloutRef(o.Name), other.docs[rolloutRef(o.Name)]); err != nil {
			return err
		}
		s.Rollouts = append(s.Rollouts, o)
	}
	for _, o := range other.Manifests {
		if err := s.add(RefOf(o), other.docs[RefOf(o)]); err != nil {
			return err
		}
		s.Manifests = append(s.Manifests, o)
	}
	return nil
}

// Len is the number of documents in the set.
func (s *Set) Len() int { return len(s.docs) }

func nsRef(name string) Ref { return Ref{Group: Group, Kind: KindMeshNamespace, Name: name} }
func svcRef(namespace, name string) Ref {
	return Ref{Group: Group, Kind: KindMeshService, Namespace: namespace, Name: name}
}
func rolloutRef(name string) Ref { return Ref{Group: Group, Kind: KindDataplaneRollout, Name: name} }

func (s *Set) add(ref Ref, d *document) error {
	if prev, dup := s.docs[ref]; dup {
		return &FieldError{Position: d.pos, Object: ref.String(), Message: fmt.Sprintf("declared twice, first at %s; keep one", prev.pos)}
	}
	s.docs[ref] = d
	return nil
}

func (s *Set) addNamespace(o *MeshNamespace, d *document) error {
	if err := validateMeta(o.Name, o.Namespace, false, KindMeshNamespace, d); err != nil {
		return err
	}
	if err := s.add(nsRef(o.Name), d); err != nil {
		return err
	}
	if err := validateNamespace(o, d); err != nil {
		delete(s.docs, nsRef(o.Name))
		return err
	}
	s.Namespaces = append(s.Namespaces, o)
	return nil
}

func (s *Set) addService(o *MeshService, d *document) error {
	if err := validateMeta(o.Name, o.Namespace, true, KindMeshService, d); err != nil {
		return err
	}
	if err := s.add(svcRef(o.Namespace, o.Name), d); err != nil {
		return err
	}
	if err := validateService(o, d); err != nil {
		delete(s.docs, svcRef(o.Namespace, o.Name))
		return err
	}
	s.Services = append(s.Services, o)
	return nil
}

func (s *Set) addRollout(o *DataplaneRollout, d *document) error {
	if err := validateMeta(o.Name, o.Namespace, false, KindDataplaneRollout, d); err != nil {
		return err
	}
	if err := s.add(rolloutRef(o.Name), d); err != nil {
		return err
	}
	if err := validateRollout(o, d); err != nil {
		delete(s.docs, rolloutRef(o.Name))
		return err
	}
	s.Rollouts = append(s.Rollouts, o)
	return nil
}

func (s *Set) addManifest(o *unstructured.Unstructured, pos Position) error {
	if err := s.add(RefOf(o), &document{file: pos.File, pos: pos}); err != nil {
		return err
	}
	s.Manifests = append(s.Manifests, o)
	return nil
}

// DefaultNamespace puts every plain manifest that names no namespace, and
// whose kind namespaced reports as namespaced, in ns, as kubectl does with
// its --namespace flag or "default". Spec documents are left alone: a
// MeshService must name its namespace. An object that then collides with
// another is an error naming both places.
func (s *Set) DefaultNamespace(ns string, namespaced func(schema.GroupKind) bool) error {
	var errs []error
	for _, m := range s.Manifests {
		ref := RefOf(m)
		if ref.Namespace != "" || !namespaced(schema.GroupKind{Group: ref.Group, Kind: ref.Kind}) {
			continue
		}
		d := s.docs[ref]
		delete(s.docs, ref)
		m.SetNamespace(ns)
		if err := s.add(RefOf(m), d); err != nil {
			errs = append(errs, err)
		}
	}
	sortErrors(errs)
	return errors.Join(errs...)
}

// Sort orders every list by namespace and name, so output never depends on
// the order files were read in.
func (s *Set) Sort() {
	sort.Slice(s.Namespaces, func(i, j int) bool { return s.Namespaces[i].Name < s.Namespaces[j].Name })
	sort.Slice(s.Services, func(i, j int) bool {
		a, b := s.Services[i], s.Services[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	sort.Slice(s.Rollouts, func(i, j int) bool { return s.Rollouts[i].Name < s.Rollouts[j].Name })
	sort.Slice(s.Manifests, func(i, j int) bool {
		return RefOf(s.Manifests[i]).Less(RefOf(s.Manifests[j]))
	})
}

// Namespace returns the MeshNamespace called name, or nil.
func (s *Set) Namespace(name string) *MeshNamespace {
	if len(s.byName) != len(s.Namespaces) {
		s.byName = make(map[string]*MeshNamespace, len(s.Namespaces))
		for _, n := range s.Namespaces {
			s.byName[n.Name] = n
		}
	}
	return s.byName[name]
}
