package images

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"

	"github.com/ecmplb/ecmplb/internal/testenv"
	"github.com/ecmplb/ecmplb/kindconfig/ociimage"
)

// files maps each path of an image's flattened file system to its header.
func files(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*tar.Header{}
	for _, l := range layers {
		if err := ociimage.Walk(l, func(h *tar.Header, _ io.Reader) error { out[h.Name] = h; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func checkImage(t *testing.T, s Spec, img v1.Image, m Meta) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("%s: user %q, want 65532:65532", s.Name, cf.Config.User)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/" + s.Name}) {
		t.Errorf("%s: entrypoint %v", s.Name, cf.Config.Entrypoint)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.title":    s.Name,
		"org.opencontainers.image.version":  m.Version,
		"org.opencontainers.image.revision": m.Revision,
		"org.opencontainers.image.source":   Source,
	} {
		if got := cf.Config.Labels[k]; got != want {
			t.Errorf("%s: label %s = %q, want %q", s.Name, k, got, want)
		}
	}
	fs := files(t, img)
	for _, p := range []string{"etc/passwd", "etc/group", "usr/local/bin/" + s.Name} {
		if fs[p] == nil {
			t.Errorf("%s: no %s", s.Name, p)
		}
	}
	bin := fs["usr/local/bin/"+s.Name]
	if bin == nil {
		return
	}
	if bin.Uid != 0 || bin.Mode != 0o755 {
		t.Errorf("%s: binary owner %d mode %o", s.Name, bin.Uid, bin.Mode)
	}
	xattr, ok := bin.PAXRecords["SCHILY.xattr.security.capability"]
	if s.Caps == 0 {
		if ok {
			t.Errorf("%s: binary has a file capability", s.Name)
		}
		return
	}
	caps, eff, err := ociimage.ParseFileCapability([]byte(xattr))
	if err != nil || caps != s.Caps || !eff {
		t.Errorf("%s: file capability %#x effective %v (%v), want %#x+ep", s.Name, caps, eff, err, s.Caps)
	}
}

// Every image of the catalogue: non-root user, entrypoint, labels, and the
// speaker's binary with cap_net_raw+ep (no other capability, none on the
// others).
func TestCatalogueImages(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(bin, []byte("\x7fELF fake"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := Meta{Version: "v1.2.3-4-gabc", Revision: "abc123"}
	for _, s := range Catalogue {
		img, err := s.Image(v1.Platform{OS: "linux", Architecture: "arm64"}, bin, m)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, s, img, m)
	}
	spk, _ := Lookup("ecmplb-speaker")
	if spk.Caps != 1<<unix.CAP_NET_RAW {
		t.Errorf("speaker file capabilities %#x, want NET_RAW only", spk.Caps)
	}
}

func TestBaseLayerUsers(t *testing.T) {
	l, err := BaseLayer()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	err = ociimage.Walk(l, func(h *tar.Header, r io.Reader) error {
		b, err := io.ReadAll(r)
		got[h.Name] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"; !strings.Contains(got["etc/passwd"], want) {
		t.Errorf("/etc/passwd %q lacks %q", got["etc/passwd"], want)
	}
	if want := "nonroot:x:65532:\n"; !strings.Contains(got["etc/group"], want) {
		t.Errorf("/etc/group %q lacks %q", got["etc/group"], want)
	}
}

// Build cross-compiles the echo server (the smallest binary) for amd64 and
// arm64: the layout's index has both platforms, each a real binary.
func TestBuildEchoBothPlatforms(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := Lookup("ecmplb-echo")
	cache := os.Getenv("ECMPLB_CACHE")
	if cache == "" {
		cache = "/var/cache/ecmplb"
	}
	o := Options{RepoRoot: root, BinDir: filepath.Join(cache, "images-test"), OutDir: t.TempDir(),
		Platforms: []string{"linux/amd64", "linux/arm64"}, Tag: "test", Meta: GitMeta(context.Background(), root)}
	if o.Meta.Revision == "" {
		t.Fatal("no git revision")
	}
	dir, err := Build(context.Background(), s, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + ".tar"); err != nil {
		t.Error(err)
	}
	idx, top, err := ociimage.ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, s, img, o.Meta)
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v", platforms)
	}

	// Standard tools read the archive (skopeo where installed).
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command(skopeo, "inspect", "--raw", "oci-archive:"+dir+".tar").Output()
		if err != nil || !strings.Contains(string(out), `"architecture":"arm64"`) {
			t.Errorf("skopeo inspect --raw oci-archive:%s.tar: %v\n%s", dir, err, out)
		}
	}

	// It pushes as `crane push DIR REF` does (the layout's one entry, an
	// index) to a registry on loopback, and pulls back unchanged.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref, err := name.ParseReference(strings.TrimPrefix(reg.URL, "http://") + "/ecmplb/echo:test")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("push: %v", err)
	}
	pulled, err := remote.Index(ref)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	want, _ := idx.Digest()
	if got, _ := pulled.Digest(); got != want || top.Digest != want {
		t.Errorf("pulled index %s, pushed %s, layout %s", got, want, top.Digest)
	}
}

// deploy/Dockerfile builds the same images: one target per image with its
// binary as entrypoint, the same user.
func TestDockerfileMatchesCatalogue(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if !strings.Contains(df, "\nUSER 65532:65532\n") {
		t.Error("Dockerfile: no USER 65532:65532")
	}
	for _, s := range Catalogue {
		target := strings.TrimPrefix(s.Name, "ecmplb-")
		for _, want := range []string{
			"FROM base AS " + target + "\n",
			`ENTRYPOINT ["` + s.BinaryPath() + `"]`,
			"go build -trimpath -ldflags=\"-s -w\" -o /out/" + s.Name + " " + s.Package,
		} {
			if !strings.Contains(df, want) {
				t.Errorf("Dockerfile lacks %q", want)
			}
		}
	}
}
