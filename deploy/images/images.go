// Package images builds ecmplb's container images (controller, speaker and
// the test echo server) from this repository without Docker or a registry:
// static binaries cross-compiled per platform, a base layer made here (no
// base image), a non-root user, OCI labels, one OCI image index per image,
// written as an OCI layout and an OCI archive (package
// kindconfig/ociimage).
package images

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/kindconfig/ociimage"
)

// UID and GID of the images' user ("nonroot"); the chart runs the pods as
// this user.
const (
	UID = 65532
	GID = 65532
)

// Source is the repository the images are built from (label
// org.opencontainers.image.source).
const Source = "https://github.com/ecmplb/ecmplb"

// Spec is one image of the catalogue.
type Spec struct {
	// Name is the binary's and the output files' name (ecmplb-speaker).
	Name string
	// Repository is the image name without tag (ecmplb/speaker).
	Repository string
	// Package is the Go package built into the binary (./speaker).
	Package string
	// Description becomes org.opencontainers.image.description.
	Description string
	// Caps is the binary's file capability set (permitted and effective),
	// bit n = capability n; 0 for none.
	Caps uint64
}

// Catalogue is every image make images builds.
var Catalogue = []Spec{
	{Name: "ecmplb-controller", Repository: "ecmplb/controller", Package: "./controller",
		Description: "ecmplb controller: allocates LoadBalancer IPs from metallb.io IPAddressPools"},
	// The BFD echo function sends on a packet socket: NET_RAW. Kubernetes
	// gives a non-root container no effective capability, so the binary
	// carries it as a file capability (effective when the pod allows
	// privilege escalation and adds NET_RAW; see the chart).
	{Name: "ecmplb-speaker", Repository: "ecmplb/speaker", Package: "./speaker",
		Description: "ecmplb speaker: announces LoadBalancer IPs over BGP with BFD", Caps: 1 << unix.CAP_NET_RAW},
	{Name: "ecmplb-echo", Repository: "ecmplb/echo", Package: "./deploy/echo",
		Description: "HTTP and TCP echo server for ecmplb's test Services"},
}

// Lookup returns the catalogue entry with the given name.
func Lookup(name string) (Spec, bool) {
	for _, s := range Catalogue {
		if s.Name == name {
			return s, true
		}
	}
	return Spec{}, false
}

// BinaryPath is where an image holds its binary; it is the entrypoint.
func (s Spec) BinaryPath() string { return "/usr/local/bin/" + s.Name }

// Meta is what the labels say about the build.
type Meta struct {
	// Version is `git describe` (org.opencontainers.image.version).
	Version string
	// Revision is the commit (org.opencontainers.image.revision).
	Revision string
}

// Labels are the image config's labels and the index's annotations.
func (s Spec) Labels(m Meta) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       s.Name,
		"org.opencontainers.image.description": s.Description,
		"org.opencontainers.image.source":      Source,
		"org.opencontainers.image.url":         Source,
	}
	if m.Version != "" {
		l["org.opencontainers.image.version"] = m.Version
	}
	if m.Revision != "" {
		l["org.opencontainers.image.revision"] = m.Revision
	}
	return l
}

// BaseLayer is the images' minimal root: /etc/passwd and /etc/group with
// root and the non-root user, and a /tmp. No shell, no libraries, no CA
// certificates (nothing here dials TLS but the in-cluster API, whose CA
// comes with the ServiceAccount).
func BaseLayer() (v1.Layer, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)
	return ociimage.Layer([]ociimage.Entry{
		{Path: "etc", Mode: fs.ModeDir | 0o755},
		{Path: "etc/group", Mode: 0o644, Data: []byte(group)},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte(passwd)},
		{Path: "home", Mode: fs.ModeDir | 0o755},
		{Path: "home/nonroot", Mode: fs.ModeDir | 0o700, Uid: UID, Gid: GID},
		{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
	})
}

// BinaryLayer holds the binary at BinaryPath, owned by root, with the
// spec's file capability.
func (s Spec) BinaryLayer(binary string) (v1.Layer, error) {
	bin := ociimage.Entry{Path: strings.TrimPrefix(s.BinaryPath(), "/"), Mode: 0o755, Source: binary}
	if s.Caps != 0 {
		bin.Xattrs = map[string][]byte{ociimage.XattrCapability: ociimage.FileCapability(s.Caps, true)}
	}
	return ociimage.Layer([]ociimage.Entry{
		{Path: "usr", Mode: fs.ModeDir | 0o755},
		{Path: "usr/local", Mode: fs.ModeDir | 0o755},
		{Path: "usr/local/bin", Mode: fs.ModeDir | 0o755},
		bin,
	})
}

// Image assembles the image for one platform from a binary built for it.
func (s Spec) Image(platform v1.Platform, binary string, m Meta) (v1.Image, error) {
	base, err := BaseLayer()
	if err != nil {
		return nil, err
	}
	bl, err := s.BinaryLayer(binary)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return ociimage.Image(platform, ociimage.Config{
		Entrypoint: []string{s.BinaryPath()},
		User:       fmt.Sprintf("%d:%d", UID, GID),
		Labels:     s.Labels(m),
	}, base, bl)
}

// Options say how Build builds.
type Options struct {
	// RepoRoot is the module's root directory.
	RepoRoot string
	// BinDir holds the per-platform binaries (a cache: go build relinks
	// only what changed), e.g. /var/cache/ecmplb/images.
	BinDir string
	// OutDir receives <name>/ (OCI layout) and <name>.tar (OCI archive).
	OutDir string
	// Platforms are "linux/amd64" etc.
	Platforms []string
	// Tag is the tag the layout names the image with (dev).
	Tag string
	// Meta goes into the labels.
	Meta Meta
}

// Build cross-compiles s for every platform and writes its multi-platform
// image to OutDir; it returns the layout's directory.
func Build(ctx context.Context, s Spec, o Options) (string, error) {
	var imgs []v1.Image
	for _, p := range o.Platforms {
		platform, err := v1.ParsePlatform(p)
		if err != nil {
			return "", fmt.Errorf("platform %q: %w", p, err)
		}
		bin := filepath.Join(o.BinDir, platform.OS+"_"+platform.Architecture, s.Name)
		if err := GoBuild(ctx, o.RepoRoot, s.Package, *platform, bin); err != nil {
			return "", err
		}
		img, err := s.Image(*platform, bin, o.Meta)
		if err != nil {
			return "", err
		}
		imgs = append(imgs, img)
	}
	idx, err := ociimage.Index(s.Labels(o.Meta), imgs...)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(o.OutDir, s.Name)
	ref := ociimage.Ref{Name: "docker.io/" + s.Repository + ":" + o.Tag, Tag: o.Tag}
	if err := ociimage.WriteLayout(dir, idx, ref); err != nil {
		return "", err
	}
	if err := ociimage.WriteArchive(dir+".tar", dir); err != nil {
		return "", err
	}
	return dir, nil
}

// GoBuild builds a static (CGO_ENABLED=0), stripped, path-independent
// binary of pkg for platform.
func GoBuild(ctx context.Context, repoRoot, pkg string, platform v1.Platform, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+platform.OS, "GOARCH="+platform.Architecture)
	if platform.Variant != "" && platform.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(platform.Variant, "v"))
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %v\n%s", pkg, platform, err, b)
	}
	return nil
}

// GitMeta reads the version (git describe) and commit of the repository at
// root; fields it cannot read stay empty.
func GitMeta(ctx context.Context, root string) Meta {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		b, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	return Meta{
		Version:  git("describe", "--tags", "--always", "--dirty"),
		Revision: git("rev-parse", "HEAD"),
	}
}
