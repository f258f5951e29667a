package renderer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Cache renders a directory again only when a file the render may read
// has changed: a reconcile of an unchanged repository then costs a read of
// its files, not a parse and a compile. A failed render is never kept.
type Cache struct {
	mu     sync.Mutex
	key    [sha256.Size]byte
	bundle *Bundle
}

// Render returns the bundle of dir, rendered again only when the
// repository's files or opts changed since the last successful render.
// The bundle's Objects and Spec must not be changed; the Bundle itself and
// its slice are the caller's. Every bundle of one render shares its Spec,
// so the Spec tells renders apart.
func (c *Cache) Render(dir string, opts Options) (*Bundle, error) {
	key, err := treeKey(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("spec directory %s: %w", dir, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bundle == nil || key != c.key {
		if c.bundle, err = Render(dir, opts); err != nil {
			c.bundle = nil
			return nil, err
		}
		c.key = key
	}
	out := *c.bundle
	out.Objects = append([]*unstructured.Unstructured(nil), c.bundle.Objects...)
	return &out, nil
}

// treeKey digests opts, dir's place in its repository, and every file of
// the repository a render may read (kustomize reads anywhere inside it):
// each path, symlink target and content.
func treeKey(dir string, opts Options) ([sha256.Size]byte, error) {
	var key [sha256.Size]byte
	abs, err := filepath.Abs(dir)
	if err != nil {
		return key, err
	}
	root := repositoryRoot(abs)
	h := sha256.New()
	o, _ := json.Marshal(opts)
	field := func(b []byte) {
		_ = binary.Write(h, binary.LittleEndian, uint64(len(b)))
		h.Write(b)
	}
	field(o)
	field([]byte(abs))
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			field([]byte("link:" + path))
			field([]byte(target))
		case d.Type().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			field([]byte("file:" + path))
			st, err := f.Stat()
			if err != nil {
				return err
			}
			_ = binary.Write(h, binary.LittleEndian, uint64(st.Size()))
			if _, err := io.Copy(h, f); err != nil {
				return err
			}
		}
		return nil
	})
	h.Sum(key[:0])
	return key, err
}
