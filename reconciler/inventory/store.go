package inventory

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/reconciler/state"
)

// The ConfigMap holds the inventory under one of two keys: as JSON, which
// kubectl shows as it is, while the encoding is at most plainLimit bytes,
// and above that as gzipped JSON in base64 (as Helm keeps a release), so
// that an instance can own tens of thousands of objects in a ConfigMap
// the API server caps at 1 MiB.
const (
	dataKey = "inventory"
	gzipKey = "inventory.gz"
	// plainLimit is the largest JSON stored as it is: about 3,500 entries.
	plainLimit = 256 << 10
	// sizeLimit is what the key may hold of the 1 MiB a ConfigMap may
	// have, less room for its metadata.
	sizeLimit = 1<<20 - 16<<10
)

// Store keeps an inventory in a state ConfigMap (package state): every
// write carries the resourceVersion it started from, so two processes of
// one instance never lose each other's entries.
type Store struct {
	state *state.Store

	mu sync.Mutex
	// enc is the last encoding decoded, inv its inventory: an unchanged
	// ConfigMap is not decoded again. Callers get copies.
	enc encoding
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
	return s.decode(d.Values)
}

// Update changes the inventory with change, which gets a copy of the
// stored one, and stores what it returns; it returns what was stored. A
// write that meets another writer's is retried on what that one stored,
// so change must be a function of the inventory it is given.
func (s *Store) Update(ctx context.Context, change func(cur *Inventory) (*Inventory, error)) (*Inventory, error) {
	var stored *Inventory
	_, err := s.state.Update(ctx, func(values map[string]string) (map[string]string, error) {
		cur, err := s.decode(values)
		if err != nil {
			return nil, err
		}
		// change may edit cur in place: what was stored is compared
		// with a copy taken before.
		before := cur.clone()
		next, err := change(cur)
		if err != nil {
			return nil, err
		}
		next = next.clone()
		next.sort()
		if stored = next; reflect.DeepEqual(next, before) {
			return values, nil // nothing to encode, nothing to write
		}
		if err := s.encode(next, values); err != nil {
			return nil, err
		}
		return values, nil
	})
	if err != nil {
		return nil, err
	}
	return stored.clone(), nil
}

// encode stores inv in values under the key its size calls for, and
// removes the other key.
func (s *Store) encode(inv *Inventory, values map[string]string) error {
	raw, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("inventory encode failed: %w", err)
	}
	delete(values, dataKey)
	delete(values, gzipKey)
	if len(raw) <= plainLimit {
		values[dataKey] = string(raw)
		return nil
	}
	var buf bytes.Buffer
	b64 := base64.NewEncoder(base64.StdEncoding, &buf)
	zw := gzip.NewWriter(b64)
	if _, err := zw.Write(raw); err != nil {
		return fmt.Errorf("inventory encode failed: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("inventory encode failed: %w", err)
	}
	if err := b64.Close(); err != nil {
		return fmt.Errorf("inventory encode failed: %w", err)
	}
	if buf.Len() > sizeLimit {
		return fmt.Errorf("inventory ConfigMap %s/%s cannot hold %d objects: compressed they take %d KiB of the %d KiB a ConfigMap may hold; split the spec over several meshcd instances (--name), each with its own repository path", s.state.Namespace, s.state.Name, inv.Len(), buf.Len()>>10, sizeLimit>>10)
	}
	values[gzipKey] = buf.String()
	return nil
}

// encoding is what a ConfigMap's data hold of an inventory: which keys
// and their values.
type encoding struct {
	plain, gzipped       string
	hasPlain, hasGzipped bool
}

func encodingOf(values map[string]string) encoding {
	e := encoding{}
	e.plain, e.hasPlain = values[dataKey]
	e.gzipped, e.hasGzipped = values[gzipKey]
	return e
}

// decode returns a copy of the inventory values hold. Only a successful
// decoding is kept, so data with both keys is never served from one.
func (s *Store) decode(values map[string]string) (*Inventory, error) {
	enc := encodingOf(values)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inv != nil && s.enc == enc {
		return s.inv.clone(), nil
	}
	inv, err := enc.decode()
	if err != nil {
		return nil, fmt.Errorf("inventory ConfigMap %s/%s is corrupt: %w; restore it or delete it to start over, which forgets what meshcd owned", s.state.Namespace, s.state.Name, err)
	}
	s.enc, s.inv = enc, inv
	return inv.clone(), nil
}

// decode reads the inventory, sorted by id.
func (e encoding) decode() (*Inventory, error) {
	if e.hasPlain && e.hasGzipped {
		return nil, fmt.Errorf("it holds both keys %q and %q, and meshcd writes only one", dataKey, gzipKey)
	}
	key, raw := dataKey, []byte(e.plain)
	if e.hasGzipped {
		key = gzipKey
		zr, err := gzip.NewReader(base64.NewDecoder(base64.StdEncoding, strings.NewReader(e.gzipped)))
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
	}
	inv := &Inventory{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, inv); err != nil {
			return nil, fmt.Errorf("key %q: %w", key, err)
		}
	}
	inv.sort()
	return inv, nil
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
		inv, err := encodingOf(cm.Data).decode()
		if err != nil {
			return nil, fmt.Errorf("inventory ConfigMap %s/%s of meshcd instance %s is corrupt: %w", namespace, cm.Name, instance, err)
		}
		for _, e := range inv.Entries {
			out[e.ID] = append(out[e.ID], instance)
		}
	}
	return out, nil
}
