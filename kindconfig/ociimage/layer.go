package ociimage

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Entry is one directory, regular file or symlink of a layer built with
// Layer. Entries give what a directory tree on disk cannot: owners, and
// extended attributes such as file capabilities, without root privileges.
type Entry struct {
	// Path inside the image, relative ("etc/passwd", "usr/local/bin/").
	Path string
	// Mode holds the permission bits and fs.ModeDir or fs.ModeSymlink.
	Mode fs.FileMode
	// Uid and Gid own the entry.
	Uid, Gid int
	// Data is a regular file's content, unless Source is set.
	Data []byte
	// Source is a host file whose content becomes the regular file's.
	Source string
	// Linkname is a symlink's target.
	Linkname string
	// Xattrs are extended attributes, written as PAX records
	// SCHILY.xattr.<name>, which container runtimes apply on unpacking.
	Xattrs map[string][]byte
}

// XattrCapability is the extended attribute holding a file's capabilities.
const XattrCapability = "security.capability"

// Constants of the VFS_CAP_REVISION_2 encoding of security.capability
// (include/uapi/linux/capability.h): a little-endian magic_etc word, then
// {permitted, inheritable} for capabilities 0-31 and again for 32-63.
const (
	vfsCapRevision2      = 0x02000000
	vfsCapFlagsEffective = 0x000001
	xattrCapsSize2       = 4 * (1 + 2*2)
)

// FileCapability encodes the permitted set caps (bit n = capability n) as a
// security.capability value, with the effective flag when effective is set
// (setcap's "+ep" when both are given). The inheritable set is empty.
func FileCapability(caps uint64, effective bool) []byte {
	b := make([]byte, xattrCapsSize2)
	magic := uint32(vfsCapRevision2)
	if effective {
		magic |= vfsCapFlagsEffective
	}
	binary.LittleEndian.PutUint32(b[0:], magic)
	binary.LittleEndian.PutUint32(b[4:], uint32(caps))      // permitted, 0-31
	binary.LittleEndian.PutUint32(b[12:], uint32(caps>>32)) // permitted, 32-63
	return b
}

// ParseFileCapability decodes a VFS_CAP_REVISION_2 security.capability
// value into its permitted set and effective flag.
func ParseFileCapability(b []byte) (caps uint64, effective bool, err error) {
	if len(b) != xattrCapsSize2 {
		return 0, false, fmt.Errorf("security.capability: %d bytes, want %d (revision 2)", len(b), xattrCapsSize2)
	}
	magic := binary.LittleEndian.Uint32(b)
	if magic&0xFF000000 != vfsCapRevision2 {
		return 0, false, fmt.Errorf("security.capability: revision %#x, want %#x", magic&0xFF000000, vfsCapRevision2)
	}
	caps = uint64(binary.LittleEndian.Uint32(b[4:])) | uint64(binary.LittleEndian.Uint32(b[12:]))<<32
	return caps, magic&vfsCapFlagsEffective != 0, nil
}

// Layer writes entries, in the order given, as a reproducible OCI layer:
// every timestamp is Epoch. A directory's parents must come before it.
func Layer(entries []Entry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	return materialize(l)
}

func writeEntry(tw *tar.Writer, e Entry) error {
	name := strings.TrimPrefix(path.Clean("/"+e.Path), "/")
	if name == "" {
		return fmt.Errorf("empty path")
	}
	hdr := &tar.Header{
		Name: name, Mode: int64(e.Mode.Perm()), Uid: e.Uid, Gid: e.Gid,
		ModTime: Epoch, Format: tar.FormatPAX,
	}
	if e.Mode&fs.ModeSetuid != 0 {
		hdr.Mode |= 0o4000
	}
	if e.Mode&fs.ModeSetgid != 0 {
		hdr.Mode |= 0o2000
	}
	if e.Mode&fs.ModeSticky != 0 {
		hdr.Mode |= 0o1000
	}
	for k, v := range e.Xattrs {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+k] = string(v)
	}
	data := e.Data
	switch {
	case e.Mode.IsDir():
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case e.Mode&fs.ModeSymlink != 0:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Linkname
	case e.Mode.IsRegular():
		hdr.Typeflag = tar.TypeReg
		if e.Source != "" {
			var err error
			if data, err = os.ReadFile(e.Source); err != nil {
				return err
			}
		}
		hdr.Size = int64(len(data))
	default:
		return fmt.Errorf("unsupported mode %v", e.Mode)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg {
		_, err := tw.Write(data)
		return err
	}
	return nil
}

// Walk calls fn with each entry of the layer's (uncompressed) tar stream and
// a reader of its content, in order.
func Walk(l v1.Layer, fn func(h *tar.Header, r io.Reader) error) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}
