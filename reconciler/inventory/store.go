package inventory

import (
	"context"
	"encoding/json"
	"fmt"

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
}

// Load reads the inventory. A missing ConfigMap is an empty inventory: the
// first reconcile owns nothing yet.
func (s *Store) Load(ctx context.Context) (*Inventory, error) {
	cm := &corev1.ConfigMap{}
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, cm)
	if apierrors.IsNotFound(err) {
		return &Inventory{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inventory ConfigMap %s/%s read failed: %w", s.Namespace, s.Name, err)
	}
	inv := &Inventory{}
	if raw := cm.Data[dataKey]; raw != "" {
		if err := json.Unmarshal([]byte(raw), inv); err != nil {
			return nil, fmt.Errorf("inventory ConfigMap %s/%s is corrupt (key %q): %w; restore it or delete it to start over, which forgets what meshcd owned", s.Namespace, s.Name, dataKey, err)
		}
	}
	inv.sort()
	return inv, nil
}

// Save writes the inventory with server-side apply. It writes nothing when
// the stored inventory is already equal.
func (s *Store) Save(ctx context.Context, inv *Inventory) error {
	raw, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("inventory encode failed: %w", err)
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
		return fmt.Errorf("inventory ConfigMap %s/%s write failed: %w", s.Namespace, s.Name, err)
	}
	return nil
}
