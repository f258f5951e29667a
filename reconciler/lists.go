package reconciler

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/reconciler/apply"
)

// sharedLists serves the bulk lists of a reconcile without an informer
// cache (meshcd apply): a copy of a list the apply made is served once
// more to the health read-back right after it when the apply wrote
// nothing, so that a no-op lists each kind once instead of twice. Any
// other list goes to the API server.
type sharedLists struct {
	client.Reader

	mu   sync.Mutex
	keep bool
	kept map[string]*unstructured.UnstructuredList
}

func listKey(list *unstructured.UnstructuredList, opts []client.ListOption) string {
	// fmt prints maps sorted by key, so equal selectors print alike.
	return fmt.Sprintf("%s %v", list.GroupVersionKind(), opts)
}

// List serves a kept list once, else lists from the API server and, while
// the apply runs, keeps what it got.
func (s *sharedLists) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	u, ok := list.(*unstructured.UnstructuredList)
	if !ok {
		return s.Reader.List(ctx, list, opts...)
	}
	key := listKey(u, opts)
	s.mu.Lock()
	kept := s.kept[key]
	delete(s.kept, key)
	s.mu.Unlock()
	if kept != nil {
		// Served once: the kept copy is the caller's now.
		*u = *kept
		return nil
	}
	if err := s.Reader.List(ctx, u, opts...); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keep {
		if s.kept == nil {
			s.kept = map[string]*unstructured.UnstructuredList{}
		}
		s.kept[key] = u.DeepCopy()
	}
	return nil
}

// start keeps the lists made from now on, forgetting any kept before.
func (s *sharedLists) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep, s.kept = true, nil
}

// applied stops keeping lists and forgets them unless applied and pruned
// wrote nothing: every object unchanged or skipped, nothing pruned.
func (s *sharedLists) applied(applied, pruned *apply.ChangeSet) {
	wrote := pruned != nil && len(pruned.Changes) > 0
	if applied != nil {
		wrote = wrote || applied.Count(apply.Unchanged)+applied.Count(apply.Skipped) != len(applied.Changes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep = false
	if wrote {
		s.kept = nil
	}
}

// forget drops what is kept.
func (s *sharedLists) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep, s.kept = false, nil
}
