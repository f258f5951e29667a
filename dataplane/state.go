package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/reconciler/state"
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

// Store keeps the states of one meshcd instance's rollouts in a state
// ConfigMap (package state), a key per rollout.
type Store struct {
	Client    client.Client
	Namespace string
	Name      string

	once  sync.Once
	state *state.Store
}

func (s *Store) store() *state.Store {
	s.once.Do(func() { s.state = &state.Store{Client: s.Client, Namespace: s.Namespace, Name: s.Name} })
	return s.state
}

// Load returns the stored states by rollout name, and the ConfigMap's
// resourceVersion for Save ("" when there is none yet).
func (s *Store) Load(ctx context.Context) (map[string]*State, string, error) {
	d, err := s.store().Load(ctx)
	if err != nil {
		return nil, "", err
	}
	states, err := s.decode(d.Values)
	return states, d.ResourceVersion, err
}

func (s *Store) decode(values map[string]string) (map[string]*State, error) {
	out := map[string]*State{}
	for name, raw := range values {
		st := &State{}
		if err := json.Unmarshal([]byte(raw), st); err != nil {
			return nil, fmt.Errorf("rollout state %s/%s key %s is not valid: %w", s.Namespace, s.Name, name, err)
		}
		out[name] = st
	}
	return out, nil
}

func encode(states map[string]*State) (map[string]string, error) {
	out := make(map[string]string, len(states))
	for name, st := range states {
		b, err := json.Marshal(st)
		if err != nil {
			return nil, fmt.Errorf("rollout %s state: %w", name, err)
		}
		out[name] = string(b)
	}
	return out, nil
}

// Save stores states; version is what Load returned, so that a concurrent
// writer makes Save fail instead of being overwritten.
func (s *Store) Save(ctx context.Context, states map[string]*State, version string) error {
	values, err := encode(states)
	if err != nil {
		return err
	}
	if _, err := s.store().Write(ctx, values, version); err != nil {
		return fmt.Errorf("rollout state: %w", err)
	}
	return nil
}

// Send stores cmd for rollout name; the next step carries it out.
func (s *Store) Send(ctx context.Context, name string, cmd Command) error {
	_, err := s.store().Update(ctx, func(values map[string]string) (map[string]string, error) {
		states, err := s.decode(values)
		if err != nil {
			return nil, err
		}
		st, ok := states[name]
		if !ok {
			return nil, fmt.Errorf("no rollout %q has started; `meshcd rollout status` lists them", name)
		}
		st.Command = cmd
		return encode(states)
	})
	return err
}
