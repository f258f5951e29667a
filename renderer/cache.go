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

	"github.com/meshcd/meshcd/internal/contentkey"
)

// Cache renders a directory again only when a file the render may read
// has changed: a reconcile of an unchanged repository then costs a read of
// its files, not a parse and a compile. A failed render is never kept.
type Cache struct {
	mu     sync.Mutex
	key    [sha256.Size]byte
	bundle *Bundle
	// content is the key of the bundle's content as rendered: a bundle
	// changed in place since (its objects, spec or notes, which every
	// bundle of one render shares) is rendered again, never served.
	content contentkey.Key
}

// Render returns the bundle of dir, rendered again only when the
// repository's files or opts changed since the last successful render, or
// when what the last render returned was changed since. The Bundle itself
// and its slice are the caller's; its objects and spec are shared with
// the next bundles served, as long as they stay as rendered.
func (c *Cache) Render(dir string, opts Options) (*Bundle, error) {
	key, err := treeKey(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("spec directory %s: %w", dir, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bundle == nil || key != c.key || c.bundle.contentKey() != c.content {
		if c.bundle, err = Render(dir, opts); err != nil {
			c.bundle = nil
			return nil, err
		}
		c.key, c.content = key, c.bundle.contentKey()
	}
	out := *c.bundle
	out.Objects = append([]*unstructured.Unstructured(nil), c.bundle.Objects...)
	return &out, nil
}

// contentKey is the key of what a bundle holds.
func (b *Bundle) contentKey() contentkey.Key {
	return contentkey.Combine(contentkey.Objects(b.Objects), contentkey.Of(b.Spec), contentkey.Of(b.Notes), b.OriginKey())
}

// OriginKey is the key of where each object came from: two bundles of the
// same objects from other files or lines have other keys.
func (b *Bundle) OriginKey() contentkey.Key { return contentkey.Of(b.origins) }

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
