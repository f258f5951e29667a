package drift

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/meshcd/meshcd/ambient"
)

// Defaults of Fights.
const (
	// DefaultFightLimit is how many corrections of one field, each reverted
	// by another field manager, make a fight.
	DefaultFightLimit = 3
	// DefaultFightWindow is the time those corrections must fall within.
	DefaultFightWindow = time.Minute
)

// Fight is another field manager reverting a field meshcd corrects, again
// and again.
type Fight struct {
	// Object is "Kind namespace/name".
	Object string `json:"object"`
	// Path is the field's JSON pointer, such as /data/mode.
	Path string `json:"path"`
	// Managers are the field managers that reverted it, latest last.
	Managers []string `json:"managers"`
	// Corrections is how many of meshcd's corrections were reverted.
	Corrections int `json:"corrections"`
	// Since is the first of those corrections; At is when the fight was
	// declared.
	Since time.Time `json:"since"`
	At    time.Time `json:"at"`
}

// String says what happened and what meshcd does about it, such as
// `ConfigMap shop/settings /data/mode: field manager "fighter" reverted it
// 3 times in 1.2s; meshcd stopped correcting it until the spec changes`.
func (f Fight) String() string {
	who := "field manager " + quoted(f.Managers)
	if len(f.Managers) > 1 {
		who = "field managers " + quoted(f.Managers)
	}
	return fmt.Sprintf("%s %s: %s reverted it %d times in %s; meshcd stopped correcting it until the spec changes",
		f.Object, f.Path, who, f.Corrections, shortDuration(f.At.Sub(f.Since)))
}

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// shortDuration prints d to a tenth of a second, without trailing zero
// units: 1m, 1m30s, 2.3s.
func shortDuration(d time.Duration) string {
	s := d.Round(100 * time.Millisecond).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Fights tells a fight from a drift: a field that meshcd corrected Limit
// times within Window, and that another field manager reverted after each
// correction. A fight is declared on whichever comes last, the revert or
// the record of the correction it reverted, since the two are seen on
// different goroutines. Its clock is the times passed in; it keeps nothing
// older than Window, and nothing about objects that never drifted.
//
// A Fights is safe for concurrent use. Its zero value uses the defaults.
type Fights struct {
	// Limit is how many reverted corrections make a fight; zero means
	// DefaultFightLimit.
	Limit int
	// Window is the time they must fall within; zero means
	// DefaultFightWindow.
	Window time.Duration

	mu sync.Mutex
	// objects holds what was seen of each drifted object.
	objects map[string]*fought
}

// fought is what was seen of one object.
type fought struct {
	corrected []time.Time           // meshcd's corrections, oldest first
	fields    map[string]*fieldSeen // by path
	fight     *Fight                // set once declared
}

// fieldSeen are the drifts of one field.
type fieldSeen struct {
	drifted  []time.Time // oldest first
	managers []string    // distinct, latest last
}

// Drifted records the drift of one object seen at at: each field changed by
// another field manager may revert a correction. It returns the object's
// fight and whether this drift declared it; nil when there is none and
// meshcd should correct the object.
func (fs *Fights) Drifted(o Object, at time.Time) (*Fight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.objects[o.Object]; f != nil && f.fight != nil {
		return f.fight, false
	}
	var f *fought
	for _, fd := range o.Fields {
		if fd.Manager == ambient.FieldManager || strings.HasPrefix(fd.Manager, "unknown") {
			continue // meshcd's own write, or a dry-run that failed
		}
		if f == nil {
			f = fs.object(o.Object)
		}
		s := f.fields[fd.Path]
		if s == nil {
			s = &fieldSeen{}
			f.fields[fd.Path] = s
		}
		s.drifted = append(s.drifted, at)
		manager := fd.Manager
		if manager == "" {
			manager = "unknown"
		}
		s.managers = append(slices.DeleteFunc(s.managers, func(m string) bool { return m == manager }), manager)
	}
	if f == nil {
		return nil, false
	}
	return fs.judge(o.Object, f, at)
}

// Corrected records that meshcd re-applied object at at (the start of the
// reconcile that did, so that a revert during it is after it). It returns
// the object's fight and whether this record declared it. An object that
// never drifted is not recorded.
func (fs *Fights) Corrected(object string, at time.Time) (*Fight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.objects[object]
	if f == nil {
		return nil, false
	}
	if f.fight != nil {
		return f.fight, false
	}
	f.corrected = append(f.corrected, at)
	sort.Slice(f.corrected, func(i, j int) bool { return f.corrected[i].Before(f.corrected[j]) })
	return fs.judge(object, f, at)
}

// Forget drops everything known of object, its fight too: meshcd corrects
// it again, and counts afresh.
func (fs *Fights) Forget(object string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.objects, object)
}

// All returns the fights, sorted by object.
func (fs *Fights) All() []Fight {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []Fight
	for _, f := range fs.objects {
		if f.fight != nil {
			out = append(out, *f.fight)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Object < out[j].Object })
	return out
}

func (fs *Fights) object(name string) *fought {
	if fs.objects == nil {
		fs.objects = map[string]*fought{}
	}
	f := fs.objects[name]
	if f == nil {
		f = &fought{fields: map[string]*fieldSeen{}}
		fs.objects[name] = f
	}
	return f
}

// judge forgets what is older than the window and declares a fight when a
// field, drifted now, had Limit corrections reverted within it. A
// correction is reverted by a drift of the field after it and no later
// than the next correction.
func (fs *Fights) judge(object string, f *fought, at time.Time) (*Fight, bool) {
	limit, window := fs.Limit, fs.Window
	if limit <= 0 {
		limit = DefaultFightLimit
	}
	if window <= 0 {
		window = DefaultFightWindow
	}
	cutoff := at.Add(-window)
	f.corrected = slices.DeleteFunc(f.corrected, func(t time.Time) bool { return t.Before(cutoff) })
	paths := make([]string, 0, len(f.fields))
	for path, s := range f.fields {
		s.drifted = slices.DeleteFunc(s.drifted, func(t time.Time) bool { return t.Before(cutoff) })
		if len(s.drifted) == 0 {
			delete(f.fields, path)
			continue
		}
		paths = append(paths, path)
	}
	if len(f.fields) == 0 && len(f.corrected) == 0 {
		delete(fs.objects, object)
		return nil, false
	}
	sort.Strings(paths) // the same fight is declared for the same input
	for _, path := range paths {
		s := f.fields[path]
		last := s.drifted[len(s.drifted)-1]
		if len(f.corrected) > 0 && !last.After(f.corrected[len(f.corrected)-1]) {
			continue // corrected since it last drifted
		}
		var reverted []time.Time
		for i, c := range f.corrected {
			next := time.Time{}
			if i+1 < len(f.corrected) {
				next = f.corrected[i+1]
			}
			for _, d := range s.drifted {
				if d.After(c) && (next.IsZero() || !d.After(next)) {
					reverted = append(reverted, c)
					break
				}
			}
		}
		if len(reverted) >= limit {
			f.fight = &Fight{
				Object: object, Path: path, Managers: slices.Clone(s.managers),
				Corrections: len(reverted), Since: reverted[0], At: last,
			}
			if at.After(last) {
				f.fight.At = at
			}
			return f.fight, true
		}
	}
	return nil, false
}
