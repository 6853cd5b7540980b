// Package ociimage builds container images without a registry or Docker.
//
// WriteFile writes a single-layer image from a directory tree as a
// docker-archive tarball, which `ctr images import` and `docker load` read:
// the kind node image is built without a registry, so the images kubeadm
// expects (kube-apiserver, etcd, coredns, pause, ...) are assembled from the
// project's own binaries with it and preloaded.
//
// Layer, Image, Index, WriteLayout and WriteArchive build multi-platform OCI
// images from in-memory entries (owners, file capabilities) and write them
// as an OCI layout and archive that standard tools push (make images).
package ociimage

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Epoch is the modification and creation time written into every image, so
// the same inputs give the same image digest.
var Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultPath is the PATH put into an image's environment when Spec.Env does
// not set one.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec describes one image.
type Spec struct {
	// Tags are the names the image is stored under, e.g.
	// "registry.k8s.io/pause:3.10". At least one.
	Tags []string
	// Root is a host directory; its contents become the image's only layer,
	// owned by root, with modes and symlinks as they are in Root.
	Root string
	// Entrypoint is the image's entrypoint (may be empty).
	Entrypoint []string
	// Env is the image's environment, "KEY=value" each.
	Env []string
}

// WriteFile writes the image described by s to path as a docker-archive
// tarball.
func WriteFile(path string, s Spec) error {
	img, refs, err := Build(s)
	if err != nil {
		return err
	}
	m := make(map[name.Reference]v1.Image, len(refs))
	for _, r := range refs {
		m[r] = img
	}
	if err := tarball.MultiRefWriteToFile(path, m); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Build assembles the image described by s and parses its tags.
func Build(s Spec) (v1.Image, []name.Tag, error) {
	if len(s.Tags) == 0 {
		return nil, nil, fmt.Errorf("image from %s: no tag", s.Root)
	}
	refs := make([]name.Tag, 0, len(s.Tags))
	for _, t := range s.Tags {
		r, err := name.NewTag(t)
		if err != nil {
			return nil, nil, fmt.Errorf("tag %q: %w", t, err)
		}
		refs = append(refs, r)
	}
	layerFile, err := os.CreateTemp("", "ociimage-layer-*.tar")
	if err != nil {
		return nil, nil, fmt.Errorf("layer of %s: %w", s.Root, err)
	}
	defer os.Remove(layerFile.Name())
	if err := writeTree(layerFile, s.Root); err != nil {
		layerFile.Close()
		return nil, nil, fmt.Errorf("layer of %s: %w", s.Root, err)
	}
	if err := layerFile.Close(); err != nil {
		return nil, nil, fmt.Errorf("layer of %s: %w", s.Root, err)
	}
	// The layer is read (and compressed) once here, so the temporary file
	// can go when Build returns.
	layer, err := tarball.LayerFromFile(layerFile.Name())
	if err != nil {
		return nil, nil, fmt.Errorf("layer of %s: %w", s.Root, err)
	}
	if _, err := layer.Digest(); err != nil {
		return nil, nil, fmt.Errorf("layer of %s: %w", s.Root, err)
	}
	layer, err = materialize(layer)
	if err != nil {
		return nil, nil, fmt.Errorf("layer of %s: %w", s.Root, err)
	}
	img, err := Image(v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config{Entrypoint: s.Entrypoint, Env: s.Env}, layer)
	if err != nil {
		return nil, nil, err
	}
	return img, refs, nil
}

// materialize reads a layer's compressed bytes into memory, so it no longer
// depends on the file it came from.
func materialize(l v1.Layer) (v1.Layer, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

func withPath(env []string) []string {
	for _, e := range env {
		if len(e) >= 5 && e[:5] == "PATH=" {
			return env
		}
	}
	return append([]string{DefaultPath}, env...)
}

// writeTree writes root's contents as a tar stream: sorted, owned by 0:0,
// timestamps set to Epoch.
func writeTree(w io.Writer, root string) error {
	info, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a directory", root)
	}
	var paths []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		if err := addEntry(tw, root, p); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addEntry(tw *tar.Writer, root, p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return err
	}
	hdr.Name = filepath.ToSlash(rel)
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = Epoch, time.Time{}, time.Time{}
	hdr.Format = tar.FormatPAX
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}
