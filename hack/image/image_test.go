package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshcd/meshcd/renderer"
)

// staticMeshcd builds meshcd as make image does, with the version and
// commit the image is labelled with.
func staticMeshcd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshcd")
	ldflags := "-s -w -X github.com/meshcd/meshcd/internal/version.Version=v0.0.0-test -X github.com/meshcd/meshcd/internal/version.Commit=abc123"
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags="+ldflags, "-o", bin, "github.com/meshcd/meshcd/cmd/meshcd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestImage_TarballRunsMeshcdAsNonRootWithoutAShell(t *testing.T) {
	bin := staticMeshcd(t)
	out := filepath.Join(t.TempDir(), "image.tar")
	certs := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(certs, []byte("-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Binary: bin, Tag: "ghcr.io/meshcd/meshcd:v0.0.0-test", Revision: "abc123", CACerts: certs, Arch: runtime.GOARCH, Epoch: time.Unix(1_700_000_000, 0).UTC()}
	if err := run(opts, out); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(opts.Tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("open %s: %v", out, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if strings.Join(c.Entrypoint, " ") != "/meshcd" || c.User != "65532:65532" || cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Fatalf("config: entrypoint %v, user %q, %s/%s", c.Entrypoint, c.User, cfg.OS, cfg.Architecture)
	}
	if c.Labels["org.opencontainers.image.version"] != "v0.0.0-test" || c.Labels["org.opencontainers.image.revision"] != "abc123" {
		t.Fatalf("labels: %v", c.Labels)
	}

	files := map[string]*tar.Header{}
	var binary []byte
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		if h.Name == "meshcd" {
			if binary, err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, shell := range []string{"bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh", "bin"} {
		if files[shell] != nil {
			t.Errorf("the image has %s", shell)
		}
	}
	if h := files["meshcd"]; h == nil || h.Mode&0o111 == 0 || h.Uid != 0 {
		t.Fatalf("/meshcd: %+v", h)
	}
	if h := files["etc/passwd"]; h == nil {
		t.Fatal("no /etc/passwd for the non-root user")
	}
	if h := files["etc/ssl/certs/ca-certificates.crt"]; h == nil || h.Size == 0 {
		t.Fatal("no CA bundle for https sources")
	}
	for n, h := range files {
		if !h.ModTime.Equal(opts.Epoch) {
			t.Errorf("%s has time %s, not the epoch", n, h.ModTime)
		}
	}

	// The binary taken out of the image runs and reports the version and
	// commit the image is labelled with.
	extracted := filepath.Join(t.TempDir(), "meshcd")
	if err := os.WriteFile(extracted, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(extracted, "version", "-o", "json").CombinedOutput()
	if err != nil || !strings.Contains(string(got), `"v0.0.0-test"`) || !strings.Contains(string(got), `"abc123"`) {
		t.Fatalf("the image's meshcd version: %v\n%s", err, got)
	}

	// Reproducible: the same inputs give the same digest as the tarball's.
	same := opts
	same.Version = "v0.0.0-test" // as run takes it from the tag
	again, err := Build(same)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatalf("two builds of the same inputs: %s and %s", d1, d2)
	}
}

func TestImage_RefusesADynamicBinaryAndTheLatestTag(t *testing.T) {
	dir := t.TempDir()
	// /bin/sh is a dynamically linked ELF file on the Linux this runs on.
	err := run(Options{Binary: "/bin/sh", Tag: "ghcr.io/meshcd/meshcd:v1.0.0", Arch: runtime.GOARCH}, filepath.Join(dir, "x.tar"))
	if err == nil || !strings.Contains(err.Error(), "dynamically linked") || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Fatalf("a dynamic binary: %v", err)
	}
	err = run(Options{Binary: "/bin/sh", Tag: "ghcr.io/meshcd/meshcd:latest"}, filepath.Join(dir, "x.tar"))
	if err == nil || !strings.Contains(err.Error(), "versioned tag") {
		t.Fatalf("the latest tag: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); !os.IsNotExist(err) {
		t.Fatalf("a refused build wrote the tarball: %v", err)
	}
}

func TestInstall_ConfigRunsAVersionedTagOfTheImage(t *testing.T) {
	b, err := renderer.Render("../../config", renderer.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for _, o := range b.Objects {
		if o.GetKind() != "Deployment" {
			continue
		}
		containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		for _, c := range containers {
			image, _ := c.(map[string]any)["image"].(string)
			images = append(images, image)
		}
	}
	if len(images) != 1 {
		t.Fatalf("images: %v", images)
	}
	ref, err := name.NewTag(images[0], name.StrictValidation)
	if err != nil || ref.Context().Name() != "ghcr.io/meshcd/meshcd" || ref.TagStr() == "latest" || !strings.HasPrefix(ref.TagStr(), "v") {
		t.Fatalf("config/ runs %q (%v): want a versioned tag of the image make image builds", images[0], err)
	}
}
