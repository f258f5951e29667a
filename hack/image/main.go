// Command image builds meshcd's container image without a container
// daemon: one layer holding the static binary, a passwd entry for the
// non-root user it runs as and the CA bundle for https sources, no shell,
// written as an image tarball in docker save's format, which docker load,
// podman load, crane push and kind load image-archive read. The same inputs give the same image digest: every
// time stamp is --epoch.
//
//	go run ./hack/image --binary dist/meshcd --tag ghcr.io/meshcd/meshcd:v0.3.0 --out dist/meshcd-image.tar
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Options say what goes into the image.
type Options struct {
	// Binary is the static meshcd binary.
	Binary string
	// Tag is the image's name and versioned tag, such as
	// ghcr.io/meshcd/meshcd:v0.3.0.
	Tag string
	// Version and Revision label the image (org.opencontainers.image.*).
	Version, Revision string
	// CACerts is the CA bundle copied to /etc/ssl/certs/ca-certificates.crt;
	// empty leaves it out.
	CACerts string
	// Arch is the binary's architecture, such as amd64.
	Arch string
	// Epoch is the time stamp of every file and of the image.
	Epoch time.Time
}

// User is the uid and gid meshcd runs as, distroless' nonroot.
const User = "65532:65532"

// Entrypoint is where the binary lands in the image.
const Entrypoint = "/meshcd"

func main() {
	o := Options{Arch: runtime.GOARCH}
	var out string
	epoch := flag.Int64("epoch", sourceDateEpoch(), "seconds since 1970 for every time stamp (default $SOURCE_DATE_EPOCH or 0)")
	flag.StringVar(&o.Binary, "binary", "", "the static meshcd binary (CGO_ENABLED=0)")
	flag.StringVar(&o.Tag, "tag", "", "image name with a versioned tag, such as ghcr.io/meshcd/meshcd:v0.3.0")
	flag.StringVar(&o.Version, "version", "", "version label (default: the tag's tag)")
	flag.StringVar(&o.Revision, "revision", "", "git commit label")
	flag.StringVar(&o.CACerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle to include for https git sources; empty leaves it out")
	flag.StringVar(&o.Arch, "arch", o.Arch, "the binary's architecture")
	flag.StringVar(&out, "out", "", "image tarball to write")
	flag.Parse()
	o.Epoch = time.Unix(*epoch, 0).UTC()
	if err := run(o, out); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func sourceDateEpoch() int64 {
	n, _ := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	return n
}

func run(o Options, out string) error {
	if o.Binary == "" || o.Tag == "" || out == "" {
		return errors.New("--binary, --tag and --out are required")
	}
	tag, err := name.NewTag(o.Tag, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("--tag %s: %w; give a versioned tag such as ghcr.io/meshcd/meshcd:v0.3.0", o.Tag, err)
	}
	if tag.TagStr() == "latest" {
		return fmt.Errorf("--tag %s: give a versioned tag, not latest", o.Tag)
	}
	if o.Version == "" {
		o.Version = tag.TagStr()
	}
	img, err := Build(o)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, tag, img); err != nil {
		return fmt.Errorf("image %s: %w", out, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", out, tag, digest)
	return nil
}

// Build makes the image.
func Build(o Options) (v1.Image, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	if err := static(o.Binary); err != nil {
		return nil, err
	}
	files := []file{
		{path: "etc/", mode: 0o755, dir: true},
		{path: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{path: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{path: "home/", mode: 0o755, dir: true},
		{path: "home/nonroot/", mode: 0o700, dir: true, owned: true},
		{path: "tmp/", mode: 0o1777, dir: true},
		{path: Entrypoint[1:], mode: 0o755, data: bin},
	}
	if o.CACerts != "" {
		certs, err := os.ReadFile(o.CACerts)
		if err != nil {
			return nil, fmt.Errorf("--ca-certs: %w", err)
		}
		files = append(files,
			file{path: "etc/ssl/", mode: 0o755, dir: true},
			file{path: "etc/ssl/certs/", mode: 0o755, dir: true},
			file{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: certs})
	}
	layerTar, err := archive(files, o.Epoch)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: o.Epoch}, CreatedBy: "hack/image: " + Entrypoint}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", o.Arch
	cfg.Created = v1.Time{Time: o.Epoch}
	cfg.Config.Entrypoint = []string{Entrypoint}
	cfg.Config.Cmd = []string{"--help"}
	cfg.Config.User = User
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{"HOME=/home/nonroot", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
	cfg.Config.Labels = map[string]string{
		"org.opencontainers.image.title":    "meshcd",
		"org.opencontainers.image.source":   "https://github.com/meshcd/meshcd",
		"org.opencontainers.image.version":  o.Version,
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	return mutate.ConfigFile(img, cfg)
}

// static refuses a binary that needs a dynamic loader: the image has none.
func static(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("binary %s is not a Linux executable: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("binary %s is dynamically linked and the image has no loader: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// file is one entry of the layer.
type file struct {
	path  string
	mode  int64
	data  []byte
	dir   bool
	owned bool // owned by the non-root user
}

// archive writes the files as a tar stream with fixed times and owners.
func archive(files []file, epoch time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, ModTime: epoch, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if f.owned {
			h.Uid, h.Gid = 65532, 65532
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
