package ociimage

import (
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Config is the run-time configuration of an image built with Image.
type Config struct {
	Entrypoint []string
	Cmd        []string
	// Env is "KEY=value" each; PATH defaults to DefaultPath.
	Env []string
	// User is "uid:gid" (numeric, so Kubernetes' runAsNonRoot can check it).
	User string
	// Labels become the image config's labels (org.opencontainers.image.*).
	Labels map[string]string
}

// Image assembles an OCI image for platform from layers, bottom first.
func Image(platform v1.Platform, cfg Config, layers ...v1.Layer) (v1.Image, error) {
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: types.OCILayer, History: v1.History{
			Created: v1.Time{Time: Epoch}, CreatedBy: "ecmplb kindconfig/ociimage",
		}})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	cf.Created = v1.Time{Time: Epoch}
	cf.Config.Entrypoint = cfg.Entrypoint
	cf.Config.Cmd = cfg.Cmd
	cf.Config.Env = withPath(cfg.Env)
	cf.Config.User = cfg.User
	cf.Config.Labels = cfg.Labels
	cf.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cf)
}

// Index puts one image per platform into an OCI image index carrying
// annotations (e.g. the same org.opencontainers.image.* labels).
func Index(annotations map[string]string, imgs ...v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range imgs {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: plainImage{img}, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
		}})
	}
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// plainImage is an image whose index descriptor has no artifactType (which
// go-containerregistry otherwise fills with the config's media type, marking
// an ordinary image as an artifact).
type plainImage struct{ v1.Image }

// ArtifactType is empty: an image, not an artifact.
func (plainImage) ArtifactType() (string, error) { return "", nil }

// Ref names the image in an OCI layout's index.json: Name is a full
// reference ("docker.io/ecmplb/speaker:dev", which containerd's import
// uses) and Tag its tag ("dev", org.opencontainers.image.ref.name, which
// skopeo's oci: and oci-archive: transports match).
type Ref struct {
	Name, Tag string
}

// WriteLayout writes idx as the only entry of a fresh OCI image layout in
// dir (removed first): `crane push DIR REF` pushes the whole index, and
// `skopeo copy --all oci:DIR:TAG ...` copies it.
func WriteLayout(dir string, idx v1.ImageIndex, ref Ref) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	anns := map[string]string{}
	if ref.Name != "" {
		anns["io.containerd.image.name"] = ref.Name
	}
	if ref.Tag != "" {
		anns["org.opencontainers.image.ref.name"] = ref.Tag
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(anns)); err != nil {
		return fmt.Errorf("layout %s: %w", dir, err)
	}
	return nil
}

// WriteArchive writes the OCI layout in dir as a reproducible tar file
// (an "oci-archive": `skopeo copy oci-archive:PATH ...`, `ctr images import
// PATH`).
func WriteArchive(path, dir string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ociimage-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeTree(tmp, dir); err != nil {
		tmp.Close()
		return fmt.Errorf("archive of %s: %w", dir, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadLayout reads back what WriteLayout wrote: the image index that is the
// layout's only entry, and that entry's descriptor (with its Ref
// annotations).
func ReadLayout(dir string) (v1.ImageIndex, v1.Descriptor, error) {
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	m, err := root.IndexManifest()
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return nil, v1.Descriptor{}, fmt.Errorf("layout %s: want one image index, have %d entries", dir, len(m.Manifests))
	}
	idx, err := root.ImageIndex(m.Manifests[0].Digest)
	return idx, m.Manifests[0], err
}
