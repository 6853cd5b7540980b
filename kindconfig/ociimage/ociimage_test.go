package ociimage

import (
	"archive/tar"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestWriteFileRoundTrip(t *testing.T) {
	root := t.TempDir()
	mustMkdir(t, filepath.Join(root, "usr/local/bin"), 0o755)
	mustMkdir(t, filepath.Join(root, "tmp"), 0o777|os.ModeSticky)
	if err := os.WriteFile(filepath.Join(root, "usr/local/bin/tool"), []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("tool", filepath.Join(root, "usr/local/bin/alias")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "img.tar")
	spec := Spec{
		Tags:       []string{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.1"},
		Root:       root,
		Entrypoint: []string{"/usr/local/bin/tool"},
		Env:        []string{"A=b"},
	}
	if err := WriteFile(out, spec); err != nil {
		t.Fatal(err)
	}

	// Both tags are in the archive's manifest.
	tags := archiveTags(t, out)
	for _, want := range spec.Tags {
		if !slices.Contains(tags, want) {
			t.Errorf("archive tags %v lack %q", tags, want)
		}
	}

	tag, err := name.NewTag("registry.k8s.io/pause:3.10.1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !slices.Equal(cf.Config.Entrypoint, spec.Entrypoint) {
		t.Errorf("entrypoint %v, want %v", cf.Config.Entrypoint, spec.Entrypoint)
	}
	if !slices.Equal(cf.Config.Env, []string{DefaultPath, "A=b"}) {
		t.Errorf("env %v", cf.Config.Env)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, err %v", len(layers), err)
	}
	got := layerHeaders(t, layers[0])
	for _, tc := range []struct {
		name     string
		typ      byte
		mode     int64
		linkname string
	}{
		{"tmp/", tar.TypeDir, 0o1777, ""},
		{"usr/", tar.TypeDir, 0o755, ""},
		{"usr/local/bin/tool", tar.TypeReg, 0o755, ""},
		{"usr/local/bin/alias", tar.TypeSymlink, 0o777, "tool"},
	} {
		h, ok := got[tc.name]
		if !ok {
			t.Errorf("layer lacks %s (has %v)", tc.name, keys(got))
			continue
		}
		if h.Typeflag != tc.typ || h.Mode&0o7777 != tc.mode || h.Linkname != tc.linkname {
			t.Errorf("%s: type %c mode %o link %q, want %c %o %q", tc.name, h.Typeflag, h.Mode&0o7777, h.Linkname, tc.typ, tc.mode, tc.linkname)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(Epoch) {
			t.Errorf("%s: owner %d:%d mtime %v", tc.name, h.Uid, h.Gid, h.ModTime)
		}
	}
}

func TestBuildIsReproducible(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Tags: []string{"example.com/a:1"}, Root: root}
	a, _, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	// A later modification time must not change the digest.
	if err := os.Chtimes(filepath.Join(root, "f"), Epoch.AddDate(5, 0, 0), Epoch.AddDate(5, 0, 0)); err != nil {
		t.Fatal(err)
	}
	b, _, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("digests differ: %s vs %s", da, db)
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"no tag", Spec{Root: dir}},
		{"bad tag", Spec{Tags: []string{"UPPER/case:!"}, Root: dir}},
		{"missing root", Spec{Tags: []string{"a/b:1"}, Root: filepath.Join(dir, "nope")}},
		{"root is a file", Spec{Tags: []string{"a/b:1"}, Root: file}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Build(tc.spec); err == nil {
				t.Error("no error")
			}
		})
	}
}

func mustMkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func archiveTags(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no manifest.json: %v", err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			t.Fatal(err)
		}
		var tags []string
		for _, e := range m {
			tags = append(tags, e.RepoTags...)
		}
		return tags
	}
}

func keys(m map[string]*tar.Header) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
