package apply

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/reconciler/inventory"
)

// OwnedError is an object another meshcd instance owns and still lists in
// its inventory: taking it over silently would let two repositories fight
// over it, and the other instance's prune delete it.
type OwnedError struct {
	Object   string
	Instance string
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("%s is owned by meshcd instance %q, whose inventory still lists it; remove it from that instance's repository first (it then hands the object over without deleting it), or remove it from this one", e.Object, e.Instance)
}

// claims reads, at most once per apply or prune, which other instances'
// inventories list each object.
type claims struct {
	load func(ctx context.Context) (map[string][]string, error)
	once sync.Once
	byID map[string][]string
	err  error
}

func (m *Manager) newClaims() *claims {
	return &claims{load: m.opts.Claims}
}

// of returns the other instances whose inventories list the object id.
func (c *claims) of(ctx context.Context, id string) ([]string, error) {
	if c.load == nil {
		return nil, nil
	}
	c.once.Do(func() { c.byID, c.err = c.load(ctx) })
	return c.byID[id], c.err
}

// owner is the instance named on live; "" for an object from before
// instances were named.
func owner(live *unstructured.Unstructured) string {
	v, _, _ := unstructured.NestedString(live.Object, "metadata", "labels", ambient.LabelInstance)
	return v
}

// admitOwner decides whether this instance may write live: its own
// object, an unnamed one, or one whose owner no longer lists it (a hand
// over). It returns the reason to report for a hand-over.
func (m *Manager) admitOwner(ctx context.Context, cl *claims, name, id string, live *unstructured.Unstructured) (string, error) {
	if live == nil {
		return "", nil
	}
	other := owner(live)
	if other == "" || other == m.opts.Instance {
		return "", nil
	}
	by, err := cl.of(ctx, id)
	if err != nil {
		return "", err
	}
	for _, b := range by {
		if b == other {
			return "", &OwnedError{Object: name, Instance: other}
		}
	}
	return fmt.Sprintf("taken over from meshcd instance %q, whose inventory no longer lists it", other), nil
}

// releasedTo says why prune must leave live to another instance: it names
// another owner, or another instance's inventory lists it. "" when it is
// this instance's to prune.
func (m *Manager) releasedTo(ctx context.Context, cl *claims, id string, live *unstructured.Unstructured) (string, error) {
	if o := owner(live); o != "" && o != m.opts.Instance {
		return fmt.Sprintf("owned by meshcd instance %q now; left to it", o), nil
	}
	by, err := cl.of(ctx, id)
	if err != nil || len(by) == 0 {
		return "", err
	}
	return fmt.Sprintf("meshcd instance %s lists it in its inventory: handed over, not deleted", quoteJoin(by)), nil
}

// Owned returns the entries whose objects exist, carry meshcd's label for
// this instance (or for none) and are not handed to another instance: the
// ones another process of this instance applied again after this one
// pruned them, and whose entries must therefore stay.
func (m *Manager) Owned(ctx context.Context, entries []inventory.Entry) ([]inventory.Entry, error) {
	var out []inventory.Entry
	cl := m.newClaims()
	for _, e := range entries {
		live, err := m.read(ctx, e)
		if err != nil {
			return nil, err
		}
		if live == nil {
			continue
		}
		if live.GetLabels()[ambient.LabelManagedBy] != ambient.ManagedByValue {
			continue
		}
		released, err := m.releasedTo(ctx, cl, e.ID, live)
		if err != nil {
			return nil, err
		}
		if released == "" {
			out = append(out, e)
		}
	}
	return out, nil
}
