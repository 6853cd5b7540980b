// Command manifests keeps the plain manifests equal to the Helm chart: it
// copies deploy/crds into the chart and writes deploy/ecmplb.yaml, the
// chart's rendering with default values (make manifests, go generate
// ./deploy).
//
//	manifests [-repo DIR]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ecmplb/ecmplb/deploy/helmchart"
)

func main() {
	root := flag.String("repo", ".", "repository root")
	flag.Parse()
	if _, err := helmchart.SyncCRDs(filepath.Join(*root, "deploy/crds"), filepath.Join(*root, helmchart.Dir)); err != nil {
		fail(err)
	}
	b, err := helmchart.Manifests(*root)
	if err != nil {
		fail(err)
	}
	out := filepath.Join(*root, "deploy/ecmplb.yaml")
	if old, err := os.ReadFile(out); err == nil && bytes.Equal(old, b) {
		return
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		fail(err)
	}
	fmt.Println("wrote", out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "manifests:", err)
	os.Exit(1)
}
