package kindconfig

import (
	"strings"
	"testing"
)

const kubeadmCorefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`

func TestWithoutUpstream(t *testing.T) {
	got, err := WithoutUpstream(kubeadmCorefile)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(kubeadmCorefile, "    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n", "", 1)
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if strings.Contains(got, "forward") || !strings.Contains(got, "cache 30 {") || !strings.Contains(got, "kubernetes cluster.local") {
		t.Errorf("wrong block removed:\n%s", got)
	}

	oneLine := ".:53 {\n    forward . 8.8.8.8\n    cache 30\n}\n"
	if got, _ := WithoutUpstream(oneLine); got != ".:53 {\n    cache 30\n}\n" {
		t.Errorf("one-line forward: %q", got)
	}
	none := ".:53 {\n    cache 30\n}\n"
	if got, _ := WithoutUpstream(none); got != none {
		t.Errorf("no forward: %q", got)
	}
	if _, err := WithoutUpstream(".:53 {\n    forward . /etc/resolv.conf {\n       max_concurrent 1\n"); err == nil {
		t.Error("unclosed block: no error")
	}
}
