package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/state"
)

// statusKey is the ConfigMap key holding the status as JSON.
const statusKey = "status"

// Status is the observed state of one meshcd instance.
type Status struct {
	// Suspend stops reconciles until it is cleared (meshcd suspend/resume).
	Suspend bool `json:"suspend,omitempty"`
	// Conditions are Ready, Reconciling and Stalled.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// LastAppliedRevision is the last revision applied with success.
	LastAppliedRevision string `json:"lastAppliedRevision,omitempty"`
	// LastAttemptedRevision is the last revision a reconcile tried.
	LastAttemptedRevision string `json:"lastAttemptedRevision,omitempty"`
	// Fights are the fields another field manager keeps reverting: meshcd
	// stopped correcting their objects until the spec changes them.
	Fights []drift.Fight `json:"fights,omitempty"`
}

// statusObject adapts a Status to fluxcd's condition helpers, which want a
// Kubernetes object: the ConfigMap that stores it.
type statusObject struct {
	*corev1.ConfigMap
	status *Status
}

// GetConditions implements meta.ObjectWithConditions.
func (s statusObject) GetConditions() []metav1.Condition { return s.status.Conditions }

// SetConditions implements meta.ObjectWithConditionsSetter.
func (s statusObject) SetConditions(c []metav1.Condition) { s.status.Conditions = c }

var _ meta.ObjectWithConditionsSetter = statusObject{}

// StatusStore keeps Status in a state ConfigMap (package state).
type StatusStore struct {
	Client          client.Client
	Namespace, Name string

	once  sync.Once
	state *state.Store
}

func (s *StatusStore) store() *state.Store {
	s.once.Do(func() { s.state = &state.Store{Client: s.Client, Namespace: s.Namespace, Name: s.Name} })
	return s.state
}

// Load reads the status; a missing ConfigMap is an empty status. The
// ConfigMap returned names the instance in events.
func (s *StatusStore) Load(ctx context.Context) (*Status, *corev1.ConfigMap, error) {
	d, err := s.store().Load(ctx)
	if err != nil {
		return nil, nil, err
	}
	st, err := s.decode(d.Values)
	if err != nil {
		return nil, nil, err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, UID: d.UID, ResourceVersion: d.ResourceVersion}}
	return st, cm, nil
}

func (s *StatusStore) decode(values map[string]string) (*Status, error) {
	st := &Status{}
	if raw := values[statusKey]; raw != "" {
		if err := json.Unmarshal([]byte(raw), st); err != nil {
			return nil, fmt.Errorf("status ConfigMap %s/%s is corrupt: %w", s.Namespace, s.Name, err)
		}
	}
	return st, nil
}

// update changes the stored status with change.
func (s *StatusStore) update(ctx context.Context, change func(*Status)) error {
	_, err := s.store().Update(ctx, func(values map[string]string) (map[string]string, error) {
		st, err := s.decode(values)
		if err != nil {
			return nil, err
		}
		change(st)
		raw, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("status encode failed: %w", err)
		}
		values[statusKey] = string(raw)
		return values, nil
	})
	return err
}

// Save writes what a reconcile observed: everything but Suspend, which
// only SetSuspend writes, so a suspend issued during a reconcile stays.
func (s *StatusStore) Save(ctx context.Context, st *Status) error {
	return s.update(ctx, func(cur *Status) {
		suspend := cur.Suspend
		*cur = *st
		cur.Suspend = suspend
	})
}

// SetSuspend sets or clears Suspend.
func (s *StatusStore) SetSuspend(ctx context.Context, suspend bool) error {
	return s.update(ctx, func(cur *Status) { cur.Suspend = suspend })
}
