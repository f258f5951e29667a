package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Ref pins what to check out: one of Branch, Tag or Commit. Branch
// defaults to "main".
type Ref struct {
	Branch string
	Tag    string
	Commit string
}

// Options say where the spec lives.
type Options struct {
	// URL is the repository: file://, https:// or ssh://.
	URL string
	Ref Ref
	// Path is the spec directory inside the repository.
	Path string
	Auth *Auth
	// WorkDir holds the checkouts; each revision gets a directory of its own.
	WorkDir string
	// VerifyKeyRing, when set, is an armored PGP key ring: the checked-out
	// commit must carry a valid signature by one of its keys.
	VerifyKeyRing string
}

// Artifact is one checked-out revision.
type Artifact struct {
	// Revision is "branch@sha1:<hash>", "tag@sha1:<hash>" or "sha1:<hash>".
	Revision string
	// Commit is the full hash.
	Commit string
	// Dir is the spec directory: the checkout plus Options.Path.
	Dir string
	// root is the checkout itself.
	root string
}

// Source fetches one repository, remembering the last checkout.
type Source struct {
	opts   Options
	last   *Artifact
	clones atomic.Int64
}

// New returns a Source.
func New(opts Options) *Source {
	if opts.Ref == (Ref{}) {
		opts.Ref.Branch = "main"
	}
	return &Source{opts: opts}
}

// Clones is how many clones Fetch made; an unchanged remote makes none.
func (s *Source) Clones() int64 { return s.clones.Load() }

// Fetch returns the pinned revision. It lists the remote's refs first and
// clones only when the revision differs from the last checkout; changed
// reports whether it did.
func (s *Source) Fetch(ctx context.Context) (a *Artifact, changed bool, err error) {
	defer func() { err = s.redact(err) }()
	if err := checkURL(s.opts.URL); err != nil {
		return nil, false, err
	}
	auth, err := s.opts.Auth.method(s.opts.URL)
	if err != nil {
		return nil, false, err
	}
	hash, err := s.resolve(ctx, auth)
	if err != nil {
		return nil, false, err
	}
	if s.last != nil && s.last.Commit == hash {
		if _, err := os.Stat(s.last.Dir); err == nil {
			return s.last, false, nil
		}
	}
	a, err = s.checkout(ctx, auth, hash)
	if err != nil {
		return nil, false, err
	}
	if s.last != nil && s.last.root != a.root {
		_ = os.RemoveAll(s.last.root)
	}
	s.last = a
	return a, true, nil
}

// resolve lists the remote's refs and returns the hash the ref points at.
// A pinned commit needs no request.
func (s *Source) resolve(ctx context.Context, auth transport.AuthMethod) (string, error) {
	if c := s.opts.Ref.Commit; c != "" {
		if !plumbing.IsHash(c) {
			return "", fmt.Errorf("commit %q is not a full 40-character hash", c)
		}
		return c, nil
	}
	remote := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{s.opts.URL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return "", fmt.Errorf("list refs of %s: %w", SafeURL(s.opts.URL), err)
	}
	want := plumbing.NewBranchReferenceName(s.opts.Ref.Branch)
	if s.opts.Ref.Tag != "" {
		want = plumbing.NewTagReferenceName(s.opts.Ref.Tag)
	}
	var hash string
	for _, r := range refs {
		switch r.Name() {
		case want:
			if hash == "" {
				hash = r.Hash().String()
			}
		case plumbing.ReferenceName(want.String() + "^{}"):
			hash = r.Hash().String() // an annotated tag's commit
		}
	}
	if hash == "" {
		return "", fmt.Errorf("%s has no %s; check the branch or tag name", SafeURL(s.opts.URL), want.Short())
	}
	return hash, nil
}

// checkout clones the repository at hash into a fresh directory.
func (s *Source) checkout(ctx context.Context, auth transport.AuthMethod, hash string) (*Artifact, error) {
	root := filepath.Join(s.opts.WorkDir, hash)
	_ = os.RemoveAll(root)
	co := &git.CloneOptions{URL: s.opts.URL, Auth: auth, Tags: git.NoTags, NoCheckout: true}
	switch {
	case s.opts.Ref.Branch != "":
		co.ReferenceName, co.SingleBranch, co.Depth = plumbing.NewBranchReferenceName(s.opts.Ref.Branch), true, 1
	case s.opts.Ref.Tag != "":
		co.ReferenceName, co.SingleBranch, co.Depth = plumbing.NewTagReferenceName(s.opts.Ref.Tag), true, 1
	}
	s.clones.Add(1)
	repo, err := git.PlainCloneContext(ctx, root, false, co)
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("clone %s: %w", SafeURL(s.opts.URL), err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return nil, fmt.Errorf("worktree of %s: %w", SafeURL(s.opts.URL), err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(hash), Force: true}); err != nil {
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("checkout %s of %s: %w", hash, SafeURL(s.opts.URL), err)
	}
	if s.opts.VerifyKeyRing != "" {
		commit, err := repo.CommitObject(plumbing.NewHash(hash))
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", hash, err)
		}
		if _, err := commit.Verify(s.opts.VerifyKeyRing); err != nil {
			_ = os.RemoveAll(root)
			return nil, fmt.Errorf("commit %s has no valid signature by a trusted key: %w", hash, err)
		}
	}
	dir := filepath.Join(root, filepath.FromSlash(s.opts.Path))
	if rel, err := filepath.Rel(root, dir); err != nil || strings.HasPrefix(rel, "..") {
		return nil, fmt.Errorf("path %q leaves the repository", s.opts.Path)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("path %q is not a directory at %s", s.opts.Path, hash)
	}
	return &Artifact{Revision: s.revision(hash), Commit: hash, Dir: dir, root: root}, nil
}

func (s *Source) revision(hash string) string {
	switch {
	case s.opts.Ref.Commit != "":
		return "sha1:" + hash
	case s.opts.Ref.Tag != "":
		return s.opts.Ref.Tag + "@sha1:" + hash
	}
	return s.opts.Ref.Branch + "@sha1:" + hash
}

// redact removes every credential from err's text.
func (s *Source) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := strings.ReplaceAll(msg, s.opts.URL, SafeURL(s.opts.URL))
	for _, secret := range append(s.opts.Auth.secrets(), urlSecrets(s.opts.URL)...) {
		if len(secret) >= 4 {
			clean = strings.ReplaceAll(clean, secret, "***")
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}
