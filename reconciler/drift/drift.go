package drift

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/fluxcd/pkg/ssa/jsondiff"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/meshspec"
	"github.com/meshcd/meshcd/reconciler/apply"
	"github.com/meshcd/meshcd/reconciler/foreign"
)

// Mode is what meshcd does about drift.
type Mode string

// Modes.
const (
	// ModeCorrect re-applies the desired state (the default).
	ModeCorrect Mode = "correct"
	// ModeReport only reports.
	ModeReport Mode = "report"
)

// Field is one drifted field.
type Field struct {
	// Path is the field's JSON pointer, such as /metadata/labels/app.
	Path string `json:"path"`
	// Desired is the value meshcd applies; nil when the field should not be there.
	Desired any `json:"desired,omitempty"`
	// Live is the value in the cluster; nil when the field is missing.
	Live any `json:"live,omitempty"`
	// Manager is the field manager that changed it, such as kubectl-label.
	Manager string `json:"manager,omitempty"`
	// Time is when that manager last wrote the object.
	Time *time.Time `json:"time,omitempty"`
}

// Object is the drift of one object.
type Object struct {
	// Object is "Kind namespace/name".
	Object string `json:"object"`
	// Missing is set when the object was deleted from the cluster.
	Missing bool    `json:"missing,omitempty"`
	Fields  []Field `json:"fields,omitempty"`
}

// Judge compares desired, stamped as an apply sends it, with the server's
// dry-run of it and returns its drift, or nil when there is none. Fields another field
// manager added to an object meshcd owns fully are drift too (package
// foreign says which count): the dry-run keeps them, so they are read from
// the live object's managedFields, each with no desired value.
func Judge(ctx context.Context, c client.Client, want apply.Desired) (*Object, error) {
	desired, err := want.Stamped()
	if err != nil {
		return nil, err
	}
	d, err := jsondiff.Unstructured(ctx, c, desired, jsondiff.FieldOwner(ambient.FieldManager))
	if err != nil {
		return nil, fmt.Errorf("%s dry-run failed: %w", meshspec.RefOf(desired), err)
	}
	switch d.Type {
	case jsondiff.DiffTypeExclude:
		return nil, nil
	case jsondiff.DiffTypeCreate:
		return &Object{Object: meshspec.RefOf(desired).String(), Missing: true}, nil
	}
	live, _ := d.ClusterObject.(*unstructured.Unstructured)
	out := &Object{Object: meshspec.RefOf(desired).String()}
	for _, op := range d.Patch {
		f := Field{Path: op.Path, Desired: op.Value}
		if live != nil {
			f.Live, _ = lookup(live.Object, op.Path)
			f.Manager, f.Time = changedBy(live, op.Path)
		}
		out.Fields = append(out.Fields, f)
	}
	// The dry-run keeps what other managers added: managedFields shows it.
	added, err := foreign.Added(desired, live)
	if err != nil {
		return nil, fmt.Errorf("%s %w", out.Object, err)
	}
	for _, a := range added {
		out.Fields = append(out.Fields, Field{Path: a.Pointer, Live: a.Value, Manager: a.Manager, Time: a.Time})
	}
	if len(out.Fields) == 0 {
		return nil, nil
	}
	return out, nil
}

// lookup returns the value at a JSON pointer.
func lookup(obj map[string]any, pointer string) (any, bool) {
	var cur any = obj
	for _, seg := range splitPointer(pointer) {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[seg]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			var i int
			if _, err := fmt.Sscanf(seg, "%d", &i); err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// splitPointer splits a JSON pointer into unescaped segments.
func splitPointer(pointer string) []string {
	if pointer == "" || pointer == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return parts
}
