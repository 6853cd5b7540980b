package ociimage

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// getcap/setcap's bytes for cap_net_raw+ep (CAP_NET_RAW is 13).
var netRawEP = []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

func TestFileCapability(t *testing.T) {
	if got := FileCapability(1<<unix.CAP_NET_RAW, true); !bytes.Equal(got, netRawEP) {
		t.Errorf("cap_net_raw+ep = % x, want % x", got, netRawEP)
	}
	for _, tc := range []struct {
		caps      uint64
		effective bool
	}{
		{1 << unix.CAP_NET_RAW, true},
		{1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_BPF, false}, // CAP_BPF is 39: the second word
		{0, true},
	} {
		caps, eff, err := ParseFileCapability(FileCapability(tc.caps, tc.effective))
		if err != nil || caps != tc.caps || eff != tc.effective {
			t.Errorf("round trip of %#x/%v = %#x/%v (%v)", tc.caps, tc.effective, caps, eff, err)
		}
	}
	for _, bad := range [][]byte{nil, netRawEP[:12], append([]byte{1, 0, 0, 3}, netRawEP[4:]...)} {
		if _, _, err := ParseFileCapability(bad); err == nil {
			t.Errorf("ParseFileCapability(% x) accepted", bad)
		}
	}
}

// A multi-platform image written as a layout and an archive reads back with
// both platforms, the config, owners and the capability xattr.
func TestIndexLayoutArchive(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(bin, []byte("#!binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	layer, err := Layer([]Entry{
		{Path: "etc/", Mode: fs.ModeDir | 0o755},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("nonroot:x:65532:65532::/:/sbin/nologin\n")},
		{Path: "bin", Mode: fs.ModeDir | 0o755},
		{Path: "bin/tool", Mode: 0o755, Source: bin, Xattrs: map[string][]byte{XattrCapability: netRawEP}},
		{Path: "bin/alias", Mode: fs.ModeSymlink | 0o777, Linkname: "tool"},
		{Path: "home", Mode: fs.ModeDir | 0o700, Uid: 65532, Gid: 65532},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Entrypoint: []string{"/bin/tool"}, User: "65532:65532", Labels: map[string]string{"org.opencontainers.image.title": "tool"}}
	var imgs []v1.Image
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := Image(v1.Platform{OS: "linux", Architecture: arch}, cfg, layer)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	idx, err := Index(cfg.Labels, imgs...)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteLayout(dir, idx, Ref{Name: "docker.io/example/tool:dev", Tag: "dev"}); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "tool.tar")
	if err := WriteArchive(archive, dir); err != nil {
		t.Fatal(err)
	}

	got, d, err := ReadLayout(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.MediaType != types.OCIImageIndex ||
		d.Annotations["org.opencontainers.image.ref.name"] != "dev" || d.Annotations["io.containerd.image.name"] != "docker.io/example/tool:dev" {
		t.Errorf("index.json entry %+v", d)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.Annotations["org.opencontainers.image.title"] != "tool" {
		t.Errorf("index annotations %v", im.Annotations)
	}
	var platforms []string
	for _, d := range im.Manifests {
		platforms = append(platforms, d.Platform.String())
		if d.ArtifactType != "" {
			t.Errorf("%s: artifactType %q on an image", d.Platform, d.ArtifactType)
		}
		img, err := got.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Config.User != "65532:65532" || cf.Config.Entrypoint[0] != "/bin/tool" ||
			cf.Config.Labels["org.opencontainers.image.title"] != "tool" || cf.Architecture != d.Platform.Architecture {
			t.Errorf("%s: config %+v", d.Platform, cf.Config)
		}
		if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
			t.Errorf("%s: manifest media type %s", d.Platform, mt)
		}
	}
	if strings.Join(platforms, ",") != "linux/amd64,linux/arm64" {
		t.Errorf("platforms %v", platforms)
	}

	hdrs := layerHeaders(t, layer)
	if h := hdrs["bin/tool"]; h == nil || h.PAXRecords["SCHILY.xattr.security.capability"] != string(netRawEP) || h.Size != 8 {
		t.Errorf("bin/tool header %+v", h)
	}
	if h := hdrs["home/"]; h == nil || h.Uid != 65532 || h.Gid != 65532 || h.Mode != 0o700 {
		t.Errorf("home/ header %+v", h)
	}
	if h := hdrs["bin/alias"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "tool" {
		t.Errorf("bin/alias header %+v", h)
	}

	// The archive holds the layout.
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
	if !names["oci-layout"] || !names["index.json"] || !names["blobs/sha256/"] {
		t.Errorf("archive entries %v", names)
	}
}

func layerHeaders(t *testing.T, l v1.Layer) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	if err := Walk(l, func(h *tar.Header, _ io.Reader) error { out[h.Name] = h; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// The encoding is what the kernel reads: a copy of /bin/cat with
// FileCapability(NET_RAW, effective) runs as a non-root user with NET_RAW
// effective. Needs root to set security.* attributes.
func TestFileCapabilityGrantsOnExec(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to set security.capability")
	}
	dir, err := os.MkdirTemp("", "ociimage-fcap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("/bin/cat")
	if err != nil {
		t.Skip("no /bin/cat")
	}
	cat := filepath.Join(dir, "cat")
	if err := os.WriteFile(cat, src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(cat, XattrCapability, FileCapability(1<<unix.CAP_NET_RAW, true), 0); err != nil {
		t.Skipf("setxattr on %s: %v", dir, err)
	}
	cmd := exec.Command(cat, "/proc/self/status")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s as 65532: %v", cat, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			eff, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil || eff != 1<<unix.CAP_NET_RAW {
				t.Errorf("CapEff %q, want NET_RAW only", v)
			}
			return
		}
	}
	t.Fatalf("no CapEff in\n%s", out)
}
