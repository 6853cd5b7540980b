// Command images builds ecmplb's container images (package deploy/images)
// as OCI layouts and OCI archives, without Docker or a registry:
//
//	go run ./deploy/cmd/images -o bin/images [-platforms linux/amd64,linux/arm64] [-tag dev] [-only ecmplb-speaker]
//
// Push one with `crane push bin/images/ecmplb-speaker REGISTRY/ecmplb/speaker:TAG`
// or `skopeo copy --all oci-archive:bin/images/ecmplb-speaker.tar docker://REGISTRY/ecmplb/speaker:TAG`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ecmplb/ecmplb/deploy/images"
)

func main() {
	cache := os.Getenv("ECMPLB_CACHE")
	if cache == "" {
		cache = "/var/cache/ecmplb"
	}
	var o images.Options
	flag.StringVar(&o.RepoRoot, "repo", ".", "repository root")
	flag.StringVar(&o.OutDir, "o", "bin/images", "output directory")
	flag.StringVar(&o.BinDir, "bin-cache", filepath.Join(cache, "images"), "where the per-platform binaries are built (kept between runs)")
	flag.StringVar(&o.Tag, "tag", "dev", "tag the layouts name the images with")
	platforms := flag.String("platforms", "linux/amd64,linux/arm64", "comma-separated platforms")
	only := flag.String("only", "", "comma-separated image names (default: all of "+names()+")")
	flag.Parse()
	o.Platforms = strings.Split(*platforms, ",")
	ctx := context.Background()
	o.Meta = images.GitMeta(ctx, o.RepoRoot)

	specs := images.Catalogue
	if *only != "" {
		specs = nil
		for _, n := range strings.Split(*only, ",") {
			s, ok := images.Lookup(n)
			if !ok {
				fmt.Fprintf(os.Stderr, "images: no image %q (have %s)\n", n, names())
				os.Exit(2)
			}
			specs = append(specs, s)
		}
	}
	for _, s := range specs {
		start := time.Now()
		dir, err := images.Build(ctx, s, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "images:", err)
			os.Exit(1)
		}
		fmt.Printf("%s:%s (%s, %s) -> %s/ and %s.tar in %s\n", s.Repository, o.Tag, strings.Join(o.Platforms, ", "),
			o.Meta.Version, dir, dir, time.Since(start).Round(100*time.Millisecond))
	}
}

func names() string {
	var n []string
	for _, s := range images.Catalogue {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}
