package state

import (
	"context"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager writes meshcd's state. It differs from the field manager
// that applies repositories, so that nothing applied from a repository
// can own, or take, a field of meshcd's state.
const FieldManager = "meshcd-state"

// LabelComponent marks a ConfigMap as meshcd's state.
const (
	LabelComponent = "app.kubernetes.io/component"
	ComponentState = "meshcd-state"
)

// Store is one ConfigMap of state.
type Store struct {
	Client client.Client
	// Namespace and Name locate the ConfigMap.
	Namespace, Name string

	mu sync.Mutex
	// seen is the ConfigMap as this Store last read or wrote it: an Update
	// starts from it and lets the resourceVersion precondition tell
	// whether another writer came in between, so an update costs one
	// request and a no-op none.
	seen *corev1.ConfigMap
}

// Data is a snapshot of the state: its keys and the resourceVersion it
// was read at ("" when the ConfigMap does not exist).
type Data struct {
	Values          map[string]string
	ResourceVersion string
	// UID is the ConfigMap's, for events about the instance.
	UID types.UID
}

// Load reads the state from the API server.
func (s *Store) Load(ctx context.Context) (Data, error) {
	cm, err := s.read(ctx)
	if err != nil {
		return Data{}, err
	}
	return Data{Values: maps.Clone(cm.Data), ResourceVersion: cm.ResourceVersion, UID: cm.UID}, nil
}

func (s *Store) read(ctx context.Context) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{}
	case err != nil:
		return nil, fmt.Errorf("state ConfigMap %s/%s read failed: %w", s.Namespace, s.Name, err)
	}
	s.remember(cm)
	return cm, nil
}

func (s *Store) remember(cm *corev1.ConfigMap) {
	s.mu.Lock()
	s.seen = cm.DeepCopy()
	s.mu.Unlock()
}

func (s *Store) last() *corev1.ConfigMap {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		return nil
	}
	return s.seen.DeepCopy()
}

// Update changes the state with change, which gets a copy of the current
// values and returns the values to store. It writes nothing when they are
// equal to the current ones. The write carries the resourceVersion of
// what change saw: when another writer came in between, Update reads the
// state again and calls change again, on the other writer's values.
func (s *Store) Update(ctx context.Context, change func(values map[string]string) (map[string]string, error)) (Data, error) {
	var (
		out  Data
		last error
	)
	cm := s.last()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() (err error) {
		// retry drops an error that wraps a cancelled context; keep it.
		defer func() { last = err }()
		if cm == nil {
			var err error
			if cm, err = s.read(ctx); err != nil {
				return err
			}
		}
		values := maps.Clone(cm.Data)
		if values == nil {
			values = map[string]string{}
		}
		next, err := change(values)
		if err != nil {
			return err
		}
		if maps.Equal(next, cm.Data) && cm.ResourceVersion != "" {
			out = Data{Values: maps.Clone(cm.Data), ResourceVersion: cm.ResourceVersion, UID: cm.UID}
			return nil
		}
		out, err = s.Write(ctx, next, cm.ResourceVersion)
		if apierrors.IsConflict(err) {
			cm = nil // read again, then change what the other writer stored
		}
		return err
	})
	if err == nil {
		err = last
	}
	return out, err
}

// Write stores values if the state is still at resourceVersion ("" when
// it must not exist yet). A concurrent writer makes it fail with a
// Conflict error (apierrors.IsConflict), and the caller decides again on
// what that writer stored.
func (s *Store) Write(ctx context.Context, values map[string]string, resourceVersion string) (Data, error) {
	w := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Namespace:       s.Namespace,
		Name:            s.Name,
		ResourceVersion: resourceVersion,
		Labels:          map[string]string{LabelComponent: ComponentState},
	}, Data: values}
	var err error
	if resourceVersion == "" {
		err = s.Client.Create(ctx, w, client.FieldOwner(FieldManager))
		if apierrors.IsAlreadyExists(err) {
			err = apierrors.NewConflict(corev1.Resource("configmaps"), s.Name, err)
		}
	} else {
		err = s.Client.Update(ctx, w, client.FieldOwner(FieldManager))
	}
	if err != nil {
		s.mu.Lock()
		s.seen = nil
		s.mu.Unlock()
		if apierrors.IsConflict(err) {
			return Data{}, fmt.Errorf("state ConfigMap %s/%s changed by another writer: %w", s.Namespace, s.Name, err)
		}
		return Data{}, fmt.Errorf("state ConfigMap %s/%s write failed: %w", s.Namespace, s.Name, err)
	}
	s.remember(w)
	return Data{Values: maps.Clone(w.Data), ResourceVersion: w.ResourceVersion, UID: w.UID}, nil
}
