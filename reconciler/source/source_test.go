package source

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/meshcd/meshcd/internal/gittest"
)

// repo is a real repository on disk, written with go-git.
type repo struct {
	t    testing.TB
	dir  string
	repo *git.Repository
}

func newRepo(t testing.TB) *repo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spec.git")
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	return &repo{t: t, dir: dir, repo: r}
}

// commit writes files and commits them, signed when key is set.
func (r *repo) commit(files map[string]string, key *openpgp.Entity) string {
	r.t.Helper()
	wt, err := r.repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(r.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			r.t.Fatal(err)
		}
	}
	h, err := wt.Commit("change", &git.CommitOptions{Author: &object.Signature{Name: "dev", Email: "dev@example.com", When: time.Now()}, SignKey: key})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

func (r *repo) url() string { return "file://" + r.dir }

func requireGit(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: go-git's file transport runs git-upload-pack")
	}
}

func TestFetch_ClonesOnceAndNotAgainWhileTheHeadIsUnchanged(t *testing.T) {
	requireGit(t)
	r := newRepo(t)
	first := r.commit(map[string]string{"mesh/ns.yaml": "a: 1\n"}, nil)
	s := New(Options{URL: r.url(), Path: "mesh", WorkDir: t.TempDir()})
	ctx := context.Background()

	a, changed, err := s.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !changed || a.Revision != "main@sha1:"+first || a.Commit != first {
		t.Fatalf("first fetch: changed=%v revision=%q", changed, a.Revision)
	}
	if b, err := os.ReadFile(filepath.Join(a.Dir, "ns.yaml")); err != nil || string(b) != "a: 1\n" {
		t.Fatalf("checkout content %q, %v", b, err)
	}
	for range 3 {
		again, changed, err := s.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if changed || again.Commit != first {
			t.Fatalf("unchanged head: changed=%v commit=%s", changed, again.Commit)
		}
	}
	if s.Clones() != 1 {
		t.Fatalf("an unchanged head must not clone again: %d clones", s.Clones())
	}

	second := r.commit(map[string]string{"mesh/ns.yaml": "a: 2\n"}, nil)
	b, changed, err := s.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !changed || b.Commit != second || s.Clones() != 2 {
		t.Fatalf("new head: changed=%v commit=%s clones=%d", changed, b.Commit, s.Clones())
	}
	if got, _ := os.ReadFile(filepath.Join(b.Dir, "ns.yaml")); string(got) != "a: 2\n" {
		t.Fatalf("new checkout content %q", got)
	}
	if _, err := os.Stat(a.Dir); !os.IsNotExist(err) {
		t.Fatal("the old checkout is removed once a new one is in place")
	}
}

func TestFetch_PinsTagsAndCommits(t *testing.T) {
	requireGit(t)
	r := newRepo(t)
	first := r.commit(map[string]string{"f.yaml": "v: 1\n"}, nil)
	if _, err := r.repo.CreateTag("v1.0.0", plumbing.NewHash(first), &git.CreateTagOptions{Tagger: &object.Signature{Name: "dev", Email: "d@example.com", When: time.Now()}, Message: "release"}); err != nil {
		t.Fatal(err)
	}
	r.commit(map[string]string{"f.yaml": "v: 2\n"}, nil)

	tag, _, err := New(Options{URL: r.url(), Ref: Ref{Tag: "v1.0.0"}, WorkDir: t.TempDir()}).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tag.Revision != "v1.0.0@sha1:"+first {
		t.Fatalf("an annotated tag resolves to its commit: %q", tag.Revision)
	}
	pinned, _, err := New(Options{URL: r.url(), Ref: Ref{Commit: first}, WorkDir: t.TempDir()}).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(pinned.Dir, "f.yaml")); pinned.Revision != "sha1:"+first || string(got) != "v: 1\n" {
		t.Fatalf("commit pin: %q content %q", pinned.Revision, got)
	}
	_, _, err = New(Options{URL: r.url(), Ref: Ref{Branch: "nope"}, WorkDir: t.TempDir()}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "has no nope") {
		t.Fatalf("a missing branch is named: %v", err)
	}
	_, _, err = New(Options{URL: r.url(), Path: "../etc", WorkDir: t.TempDir()}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "leaves the repository") {
		t.Fatalf("a path leaving the repository is refused: %v", err)
	}
}

func TestFetch_SmartHTTPWithBasicAuth(t *testing.T) {
	requireGit(t)
	r := newRepo(t)
	head := r.commit(map[string]string{"ns.yaml": "a: 1\n"}, nil)
	const token = "s3cr3t-token-value"
	srv := gittest.HTTPServer(t, filepath.Dir(r.dir), "meshcd", token)
	url := srv.URL + "/spec.git"

	a, _, err := New(Options{URL: url, Auth: &Auth{Username: "meshcd", Password: token}, WorkDir: t.TempDir()}).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.Commit != head {
		t.Fatalf("fetched %s, want %s", a.Commit, head)
	}
}

func TestFetch_WrongCredentialsErrorHoldsNoSecret(t *testing.T) {
	requireGit(t)
	r := newRepo(t)
	r.commit(map[string]string{"ns.yaml": "a: 1\n"}, nil)
	srv := gittest.HTTPServer(t, filepath.Dir(r.dir), "meshcd", "right-password")
	const wrong = "wrong-password-1234"
	urlWithToken := strings.Replace(srv.URL, "http://", "http://meshcd:"+wrong+"@", 1) + "/spec.git"
	for _, opts := range []Options{
		{URL: srv.URL + "/spec.git", Auth: &Auth{Username: "meshcd", Password: wrong}},
		{URL: urlWithToken},
		{URL: srv.URL + "/spec.git", Auth: &Auth{BearerToken: wrong}},
	} {
		opts.WorkDir = t.TempDir()
		_, _, err := New(opts).Fetch(context.Background())
		if err == nil {
			t.Fatal("wrong credentials must fail")
		}
		if strings.Contains(err.Error(), wrong) {
			t.Fatalf("the error shows the credential: %v", err)
		}
		if !strings.Contains(err.Error(), "authentication") && !strings.Contains(err.Error(), "authorization") {
			t.Fatalf("the error should say authentication failed: %v", err)
		}
	}
}

func TestSafeURL_DropsUserInfo(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:tok@git.example.com/a.git": "https://git.example.com/a.git",
		"https://git.example.com/a.git":          "https://git.example.com/a.git",
		"ssh://git@git.example.com/a.git":        "ssh://git.example.com/a.git",
	} {
		if got := SafeURL(in); got != want {
			t.Fatalf("SafeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFetch_VerifiesPGPSignatures(t *testing.T) {
	requireGit(t)
	key, err := openpgp.NewEntity("meshcd test", "", "test@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ring bytes.Buffer
	w, err := armor.Encode(&ring, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()

	r := newRepo(t)
	r.commit(map[string]string{"ns.yaml": "a: 1\n"}, key)
	if _, _, err := New(Options{URL: r.url(), WorkDir: t.TempDir(), VerifyKeyRing: ring.String()}).Fetch(context.Background()); err != nil {
		t.Fatalf("a commit signed by a trusted key passes: %v", err)
	}
	r.commit(map[string]string{"ns.yaml": "a: 2\n"}, nil)
	_, _, err = New(Options{URL: r.url(), WorkDir: t.TempDir(), VerifyKeyRing: ring.String()}).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no valid signature") {
		t.Fatalf("an unsigned commit is refused: %v", err)
	}
}
