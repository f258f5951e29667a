package renderer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/meshcd/meshcd/meshspec"
)

// Skip is a file under the spec directory that a render did not read, and why.
type Skip struct {
	// Path is relative to the spec directory, with forward slashes; a
	// directory ends in "/".
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// Notes tell what a render did not turn into objects: every file under
// the spec directory it did not read, and warnings about its input.
type Notes struct {
	Skipped  []Skip   `json:"skipped,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

// Reasons a file is not read.
const (
	skipGit       = "git's own data"
	skipName      = "not a manifest: meshcd reads files ending in .yaml, .yml or .json, in any letter case"
	skipNoObject  = "names no Kubernetes object: no document has an apiVersion or a kind"
	skipUnlisted  = "not read by the kustomization: name it in resources to apply it"
	manifestsHint = "meshcd reads .yaml, .yml and .json files, in any letter case"
)

// format is how a manifest file is written.
type format int

const (
	notManifest format = iota
	yamlFormat
	jsonFormat
)

// formatOf tells a manifest file by its name's ending, in any letter case,
// as kubectl does: .yaml, .yml and .json.
func formatOf(name string) format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return yamlFormat
	case ".json":
		return jsonFormat
	}
	return notManifest
}

// specFiles walks root and returns the manifest files under it, relative
// to it, and the files it passes over. Hidden files and directories are
// read like any other, as kubectl apply -R reads them; only .git, git's own
// data, is passed over. A symlink that leads out of root is an error.
func specFiles(root string) (files []string, skipped []Skip, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		switch {
		case rel == ".":
			return nil
		case d.IsDir() && d.Name() == ".git":
			skipped = append(skipped, Skip{Path: filepath.ToSlash(rel) + "/", Reason: skipGit})
			return filepath.SkipDir
		case d.IsDir():
			return nil
		case formatOf(d.Name()) == notManifest:
			skipped = append(skipped, Skip{Path: filepath.ToSlash(rel), Reason: skipName})
			return nil
		}
		files = append(files, rel)
		return nil
	})
	return files, skipped, err
}

// confined refuses a symlink under root that is broken or leads out of it.
func confined(root, rel string) error {
	path := filepath.Join(root, rel)
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return err
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%s: broken symlink: %w", rel, err)
	}
	if r, err := filepath.Rel(root, target); err != nil || strings.HasPrefix(r, "..") {
		return fmt.Errorf("%s: symlink leads out of the spec directory (to %s); copy the file in instead", rel, target)
	}
	return nil
}

// loadFiles reads every manifest file under dir (see specFiles). Files are
// decoded in parallel and merged in path order, so the result does not
// depend on scheduling. A file none of whose documents names an apiVersion
// or a kind (a CI workflow, a linter's settings, package.json) is skipped
// and listed; any other file that does not load is an error.
func loadFiles(dir string) (*meshspec.Set, []Skip, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("spec directory %s: %w", dir, err)
	}
	paths, skipped, err := specFiles(root)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range paths {
		if err := confined(root, p); err != nil {
			return nil, nil, err
		}
	}
	sets := make([]*meshspec.Set, len(paths))
	errs := make([]error, len(paths))
	noObject := make([]bool, len(paths))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sets[i], noObject[i], errs[i] = loadFile(root, paths[i])
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	set := meshspec.NewSet()
	for i, s := range sets {
		if noObject[i] {
			skipped = append(skipped, Skip{Path: filepath.ToSlash(paths[i]), Reason: skipNoObject})
			continue
		}
		if err := set.Merge(s); err != nil {
			return nil, nil, err
		}
	}
	sortSkips(skipped)
	return set, skipped, nil
}

// loadFile loads one manifest file; noObject reports a file that failed
// to load because it names no Kubernetes object at all.
func loadFile(root, rel string) (set *meshspec.Set, noObject bool, err error) {
	data, err := readBounded(filepath.Join(root, rel))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", rel, err)
	}
	isJSON := formatOf(rel) == jsonFormat
	load := meshspec.Load
	if isJSON {
		load = meshspec.LoadJSON
	}
	set, err = load(filepath.ToSlash(rel), data)
	if err != nil && !meshspec.HoldsObjects(data, isJSON) {
		return nil, true, nil
	}
	return set, false, err
}

func sortSkips(s []Skip) {
	sort.Slice(s, func(i, j int) bool { return s[i].Path < s[j].Path })
}
