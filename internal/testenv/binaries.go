package testenv

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RepoRoot returns the root of the ecmplb checkout containing the working
// directory, found by walking up to the go.mod of module
// github.com/ecmplb/ecmplb.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/ecmplb/ecmplb\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the ecmplb repository (no go.mod of module github.com/ecmplb/ecmplb above the working directory)")
		}
		dir = parent
	}
}

// Versions reads hack/versions.env, the single place where the pinned
// Kubernetes and etcd versions are written down.
func Versions(root string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(root, "hack", "versions.env"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			out[k] = v
		}
	}
	return out, sc.Err()
}

// Binaries are the paths of the pinned control-plane programs.
type Binaries struct {
	KubeAPIServer string
	Etcd          string
	Kubectl       string
}

// FindBinaries locates the binaries hack/build-kube.sh and hack/build-etcd.sh
// put in the cache ($ECMPLB_CACHE, default /var/cache/ecmplb).
// $ECMPLB_KUBE_BIN_DIR and $ECMPLB_ETCD_BIN_DIR override the directories.
func FindBinaries(root string) (Binaries, error) {
	vers, err := Versions(root)
	if err != nil {
		return Binaries{}, fmt.Errorf("reading pinned versions: %w", err)
	}
	cache := os.Getenv("ECMPLB_CACHE")
	if cache == "" {
		cache = "/var/cache/ecmplb"
	}
	kubeDir := os.Getenv("ECMPLB_KUBE_BIN_DIR")
	if kubeDir == "" {
		kubeDir = filepath.Join(cache, "kube", vers["KUBE_VERSION"], "bin")
	}
	etcdDir := os.Getenv("ECMPLB_ETCD_BIN_DIR")
	if etcdDir == "" {
		etcdDir = filepath.Join(cache, "etcd", vers["ETCD_VERSION"], "bin")
	}
	b := Binaries{
		KubeAPIServer: filepath.Join(kubeDir, "kube-apiserver"),
		Kubectl:       filepath.Join(kubeDir, "kubectl"),
		Etcd:          filepath.Join(etcdDir, "etcd"),
	}
	for _, p := range []string{b.KubeAPIServer, b.Etcd} {
		if _, err := os.Stat(p); err != nil {
			return b, fmt.Errorf("%s is missing: run `make kube` to build the pinned control plane (%w)", p, err)
		}
	}
	return b, nil
}
