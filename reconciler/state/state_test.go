package state

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// failing is a client whose every call fails with err.
type failing struct {
	client.Client
	err error
}

func (f failing) Get(context.Context, client.ObjectKey, client.Object, ...client.GetOption) error {
	return f.err
}

// client-go's retry helper turns an error that wraps a cancelled context
// into nil; Update must not report success for it.
func TestUpdate_ACancelledReadIsAnError(t *testing.T) {
	s := &Store{Client: failing{err: context.Canceled}, Namespace: "meshcd-system", Name: "x"}
	called := false
	_, err := s.Update(context.Background(), func(v map[string]string) (map[string]string, error) {
		called = true
		return v, nil
	})
	if !errors.Is(err, context.Canceled) || called {
		t.Fatalf("want the cancelled read as the error and no change, got %v (change called: %v)", err, called)
	}
}

func TestUpdate_AChangeThatFailsOnACancelledContextIsAnError(t *testing.T) {
	s := &Store{Client: failing{}, Namespace: "meshcd-system", Name: "x"}
	s.remember(&corev1.ConfigMap{})
	_, err := s.Update(context.Background(), func(map[string]string) (map[string]string, error) {
		return nil, context.Canceled
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want the change's error, got %v", err)
	}
}
