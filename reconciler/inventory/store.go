package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/reconciler/state"
)

// dataKey is the ConfigMap key that holds the inventory as JSON.
const dataKey = "inventory"

// Store keeps an inventory in a state ConfigMap (package state): every
// write carries the resourceVersion it started from, so two processes of
// one instance never lose each other's entries.
type Store struct {
	state *state.Store

	mu sync.Mutex
	// raw and inv are the last encoding decoded and its inventory: an
	// unchanged ConfigMap is not decoded again. Callers get copies.
	raw string
	inv *Inventory
}

// NewStore returns the store of the ConfigMap namespace/name.
func NewStore(c client.Client, namespace, name string) *Store {
	return &Store{state: &state.Store{Client: c, Namespace: namespace, Name: name}}
}

// Load reads the inventory. A missing ConfigMap is an empty inventory: the
// first reconcile owns nothing yet.
func (s *Store) Load(ctx context.Context) (*Inventory, error) {
	d, err := s.state.Load(ctx)
	if err != nil {
		return nil, err
	}
	return s.decode(d.Values[dataKey])
}

// Update changes the inventory with change, which gets a copy of the
// stored one, and stores what it returns; it returns what was stored. A
// write that meets another writer's is retried on what that one stored,
// so change must be a function of the inventory it is given.
func (s *Store) Update(ctx context.Context, change func(cur *Inventory) (*Inventory, error)) (*Inventory, error) {
	var stored *Inventory
	_, err := s.state.Update(ctx, func(values map[string]string) (map[string]string, error) {
		cur, err := s.decode(values[dataKey])
		if err != nil {
			return nil, err
		}
		next, err := change(cur)
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("inventory encode failed: %w", err)
		}
		values[dataKey] = string(raw)
		stored = next
		return values, nil
	})
	if err != nil {
		return nil, err
	}
	return stored.clone(), nil
}

// decode returns a copy of the inventory encoded as raw.
func (s *Store) decode(raw string) (*Inventory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inv != nil && s.raw == raw {
		return s.inv.clone(), nil
	}
	inv := &Inventory{}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), inv); err != nil {
			return nil, fmt.Errorf("inventory ConfigMap %s/%s is corrupt (key %q): %w; restore it or delete it to start over, which forgets what meshcd owned", s.state.Namespace, s.state.Name, dataKey, err)
		}
	}
	inv.sort()
	s.raw, s.inv = raw, inv
	return inv.clone(), nil
}

func (inv *Inventory) clone() *Inventory {
	c := *inv
	c.Entries = slices.Clone(inv.Entries)
	if inv.Held != nil {
		h := *inv.Held
		c.Held = &h
	}
	return &c
}

// Claims returns, for every object the inventories of other meshcd
// instances in namespace list, the names of those instances. An instance's
// inventory is the ConfigMap prefix+name; except is the asking instance.
func Claims(ctx context.Context, c client.Reader, namespace, prefix, except string) (map[string][]string, error) {
	list := &corev1.ConfigMapList{}
	if err := c.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("inventories of other meshcd instances in %s read failed: %w", namespace, err)
	}
	out := map[string][]string{}
	for _, cm := range list.Items {
		instance, ok := strings.CutPrefix(cm.Name, prefix)
		if !ok || instance == except || instance == "" {
			continue
		}
		inv := &Inventory{}
		if raw := cm.Data[dataKey]; raw != "" {
			if err := json.Unmarshal([]byte(raw), inv); err != nil {
				return nil, fmt.Errorf("inventory ConfigMap %s/%s of meshcd instance %s is corrupt: %w", namespace, cm.Name, instance, err)
			}
		}
		for _, e := range inv.Entries {
			out[e.ID] = append(out[e.ID], instance)
		}
	}
	return out, nil
}
