package controller

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/fluxcd/pkg/apis/meta"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/reconciler/drift"
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

// StatusStore keeps Status in a ConfigMap.
type StatusStore struct {
	Client          client.Client
	Namespace, Name string
}

// Load reads the status; a missing ConfigMap is an empty status.
func (s *StatusStore) Load(ctx context.Context) (*Status, *corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{}
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, cm)
	if apierrors.IsNotFound(err) {
		cm.Namespace, cm.Name = s.Namespace, s.Name
		return &Status{}, cm, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("status ConfigMap %s/%s read failed: %w", s.Namespace, s.Name, err)
	}
	st := &Status{}
	if raw := cm.Data[statusKey]; raw != "" {
		if err := json.Unmarshal([]byte(raw), st); err != nil {
			return nil, nil, fmt.Errorf("status ConfigMap %s/%s is corrupt: %w", s.Namespace, s.Name, err)
		}
	}
	return st, cm, nil
}

// Save writes the status when it changed.
func (s *StatusStore) Save(ctx context.Context, st *Status) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("status encode failed: %w", err)
	}
	cm := &corev1.ConfigMap{}
	if err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, cm); err == nil && cm.Data[statusKey] == string(raw) {
		return nil
	}
	ac := corev1ac.ConfigMap(s.Name, s.Namespace).WithData(map[string]string{statusKey: string(raw)})
	if err := s.Client.Apply(ctx, ac, client.FieldOwner(ambient.FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("status ConfigMap %s/%s write failed: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// SetSuspend sets or clears Suspend.
func (s *StatusStore) SetSuspend(ctx context.Context, suspend bool) error {
	st, _, err := s.Load(ctx)
	if err != nil {
		return err
	}
	st.Suspend = suspend
	return s.Save(ctx, st)
}
