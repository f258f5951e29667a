package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Phase is where a rollout stands.
type Phase string

// Phases: Pending → Progressing (stage N) → Paused | Succeeded | Failed →
// RolledBack.
const (
	// PhasePending: preflight has not passed yet; nothing was changed.
	PhasePending Phase = "Pending"
	// PhaseProgressing: the current stage's waypoints are moving to the bundle.
	PhaseProgressing Phase = "Progressing"
	// PhasePaused: a pause command, or a manual stage awaiting promote.
	PhasePaused Phase = "Paused"
	// PhaseSucceeded: every stage passed its gates.
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed: a gate failed or the rollout was aborted; the current
	// stage is going back to the previous images.
	PhaseFailed Phase = "Failed"
	// PhaseRolledBack: the previous images are back and ready.
	PhaseRolledBack Phase = "RolledBack"
)

// Command is an operator's instruction, stored until the next step takes it.
type Command string

// Commands of `meshcd rollout`.
const (
	CommandPause    Command = "pause"
	CommandResume   Command = "resume"
	CommandAbort    Command = "abort"
	CommandRollback Command = "rollback"
)

// State is one rollout's progress, persisted in the cluster so that a
// restarted meshcd resumes where it stopped.
type State struct {
	// Bundle is the target bundle version.
	Bundle string `json:"bundle"`
	// Phase is where the rollout stands.
	Phase Phase `json:"phase"`
	// Stage is the index of the current stage.
	Stage int `json:"stage"`
	// StageName is the current stage's name.
	StageName string `json:"stageName,omitempty"`
	// Message says why the rollout is in its phase.
	Message string `json:"message,omitempty"`
	// StageStarted is when the current stage began.
	StageStarted time.Time `json:"stageStarted,omitzero"`
	// HealthySince is when the current stage's gates began to hold.
	HealthySince time.Time `json:"healthySince,omitzero"`
	// Pins is the proxy image written on each namespace's waypoints.
	Pins map[string]string `json:"pins,omitempty"`
	// Previous is each touched namespace's image before the rollout; empty
	// means istiod's default.
	Previous map[string]string `json:"previous,omitempty"`
	// Canary is the progress of the current stage when it is a canary
	// stage; nil otherwise.
	Canary *CanaryState `json:"canary,omitempty"`
	// Ztunnel is the progress of the ztunnel stage, which follows the
	// waypoint stages.
	Ztunnel *ZtunnelState `json:"ztunnel,omitempty"`
	// Command waits for the next step.
	Command Command `json:"command,omitempty"`
}

// Store keeps the states of one meshcd instance's rollouts in a ConfigMap,
// a key per rollout.
type Store struct {
	Client    client.Client
	Namespace string
	Name      string
}

// Load returns the stored states by rollout name, and the ConfigMap's
// resourceVersion for Save ("" when there is none yet).
func (s *Store) Load(ctx context.Context) (map[string]*State, string, error) {
	cm := &corev1.ConfigMap{}
	err := s.Client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, cm)
	if apierrors.IsNotFound(err) {
		return map[string]*State{}, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("rollout state %s/%s read failed: %w", s.Namespace, s.Name, err)
	}
	out := map[string]*State{}
	for name, raw := range cm.Data {
		st := &State{}
		if err := json.Unmarshal([]byte(raw), st); err != nil {
			return nil, "", fmt.Errorf("rollout state %s/%s key %s is not valid: %w", s.Namespace, s.Name, name, err)
		}
		out[name] = st
	}
	return out, cm.ResourceVersion, nil
}

// Save stores states; version is what Load returned, so that a concurrent
// writer makes Save fail instead of being overwritten.
func (s *Store) Save(ctx context.Context, states map[string]*State, version string) error {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name, ResourceVersion: version}, Data: map[string]string{}}
	for name, st := range states {
		b, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("rollout %s state: %w", name, err)
		}
		cm.Data[name] = string(b)
	}
	var err error
	if version == "" {
		err = s.Client.Create(ctx, cm)
	} else {
		err = s.Client.Update(ctx, cm)
	}
	if err != nil {
		return fmt.Errorf("rollout state %s/%s write failed: %w", s.Namespace, s.Name, err)
	}
	return nil
}

// Send stores cmd for rollout name; the next step carries it out.
func (s *Store) Send(ctx context.Context, name string, cmd Command) error {
	states, version, err := s.Load(ctx)
	if err != nil {
		return err
	}
	st, ok := states[name]
	if !ok {
		return fmt.Errorf("no rollout %q has started; `meshcd rollout status` lists them", name)
	}
	st.Command = cmd
	return s.Save(ctx, states, version)
}
