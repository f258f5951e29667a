package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// dataKey is the ConfigMap key that holds the inventory as JSON.
const dataKey = "inventory"

// Store keeps an inventory in a ConfigMap.
type Store struct {
	Client client.Client
	// Namespace and Name locate the ConfigMap.
	Namespace, Name string
	// FieldManager is the server-side apply field manager.
	FieldManager string

	mu sync.Mutex
	// stored is the inventory's encoding as this Store last read or wrote
	// it, so that saving it unchanged costs no request, and inv is that
	// inventory, so that loading it unchanged costs no decode.
	stored string
	inv    *Inventory
}

func (s *Store) remember(raw string, inv *Inventory) {
	s.mu.Lock()
	s.stored, s.inv = raw, inv
	s.mu.Unlock()
}

// decoded returns the inventory last read or written when raw is its encoding.
func (s *Store) decoded(raw string) *Inventory {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inv == nil || s.stored != raw {
		return nil
	}
	return s.inv
}

// Load reads the inventory. A missing ConfigMap is an empty inventory: the
// first reconcile owns nothing yet. The inventory returned is shared with
// the Store and must not be changed.
func (s *Store) Load(ctx context.Context) (*Inventory, error) {
	cm := &corev1.ConfigMap{}
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, cm)
	if apierrors.IsNotFound(err) {
		s.remember("", nil)
		return &Inventory{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inventory ConfigMap %s/%s read failed: %w", s.Namespace, s.Name, err)
	}
	raw := cm.Data[dataKey]
	if inv := s.decoded(raw); inv != nil {
		return inv, nil
	}
	inv := &Inventory{}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), inv); err != nil {
			s.remember("", nil)
			return nil, fmt.Errorf("inventory ConfigMap %s/%s is corrupt (key %q): %w; restore it or delete it to start over, which forgets what meshcd owned", s.Namespace, s.Name, dataKey, err)
		}
	}
	inv.sort()
	s.remember(raw, inv)
	return inv, nil
}

// Save writes the inventory with server-side apply. It writes nothing when
// the stored inventory is already equal, and reads nothing when it is what
// this Store last loaded or saved. inv must not be changed afterwards.
func (s *Store) Save(ctx context.Context, inv *Inventory) error {
	raw, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("inventory encode failed: %w", err)
	}
	if s.decoded(string(raw)) != nil {
		return nil
	}
	cm := &corev1.ConfigMap{}
	err = s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, cm)
	if err == nil && cm.Data[dataKey] == string(raw) {
		return nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("inventory ConfigMap %s/%s read failed: %w", s.Namespace, s.Name, err)
	}
	apply := corev1ac.ConfigMap(s.Name, s.Namespace).WithData(map[string]string{dataKey: string(raw)})
	if err := s.Client.Apply(ctx, apply, client.FieldOwner(s.FieldManager), client.ForceOwnership); err != nil {
		s.remember("", nil)
		return fmt.Errorf("inventory ConfigMap %s/%s write failed: %w", s.Namespace, s.Name, err)
	}
	s.remember(string(raw), inv)
	return nil
}
