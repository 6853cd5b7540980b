// Command ociimage writes a single-layer container image built from a
// directory as a docker-archive tarball (see package ociimage). It is how
// hack/build-node-image.sh packages the control-plane binaries for preloading
// into the kind node image.
//
//	ociimage -root DIR -o OUT.tar -tag registry.k8s.io/etcd:3.6.4-0 [-tag ...] [-entrypoint /usr/local/bin/etcd] [-env K=V]
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/ecmplb/ecmplb/kindconfig/ociimage"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	var s ociimage.Spec
	var tags, env, entrypoint list
	out := flag.String("o", "", "output tarball")
	flag.StringVar(&s.Root, "root", "", "directory whose contents become the image's layer")
	flag.Var(&tags, "tag", "image name, repeatable")
	flag.Var(&entrypoint, "entrypoint", "entrypoint argument, repeatable (in order)")
	flag.Var(&env, "env", "KEY=value, repeatable")
	flag.Parse()
	if *out == "" || s.Root == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	s.Tags, s.Env, s.Entrypoint = tags, env, entrypoint
	if err := ociimage.WriteFile(*out, s); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}
