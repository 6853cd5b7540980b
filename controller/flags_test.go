package main

import (
	"flag"
	"io"
	"testing"
)

// MetalLB writes metallb.io/ip-allocated-from-pool on every Service it
// allocates to; so does ecmplb unless told otherwise.
func TestPoolAnnotationDefault(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--pool-annotation=false"}, false},
		{[]string{"--pool-annotation"}, true},
	} {
		fs := flag.NewFlagSet("ecmplb-controller", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var c config
		registerFlags(fs, &c)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if c.app.PoolAnnotation != tt.want {
			t.Errorf("args %q: PoolAnnotation = %v, want %v", tt.args, c.app.PoolAnnotation, tt.want)
		}
	}
}
