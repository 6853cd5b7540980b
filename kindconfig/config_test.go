package kindconfig

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.Name, "elb-") || o.Network != o.Name || o.NodeImage != DefaultNodeImage ||
		o.Workers != DefaultWorkers || o.PodSubnet != DefaultPodSubnet || o.ServiceSubnet != DefaultServiceSubnet {
		t.Errorf("defaults %+v", o)
	}
	o2, _ := Options{}.withDefaults()
	if o2.Name == o.Name {
		t.Errorf("two default names are both %q", o.Name)
	}
	single, err := Options{Name: "x", NoWorkers: true, Workers: 3}.withDefaults()
	if err != nil || single.Workers != 0 {
		t.Errorf("NoWorkers: %+v, %v", single, err)
	}
	for _, bad := range []Options{{Name: "Upper"}, {Name: "-x"}, {Name: strings.Repeat("a", 40)}, {Name: "x", Workers: -1}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestKindConfig(t *testing.T) {
	o, err := Options{Name: "elb-test", Workers: 2, NodeImage: "img:1"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c := KindConfig(o)
	if c.Name != "elb-test" || len(c.Nodes) != 3 {
		t.Fatalf("config %+v", c)
	}
	roles := map[v1alpha4.NodeRole]int{}
	for _, n := range c.Nodes {
		roles[n.Role]++
		if n.Image != "img:1" {
			t.Errorf("node image %q", n.Image)
		}
	}
	if roles[v1alpha4.ControlPlaneRole] != 1 || roles[v1alpha4.WorkerRole] != 2 {
		t.Errorf("roles %v", roles)
	}
	nw := c.Networking
	if !nw.DisableDefaultCNI || nw.PodSubnet != DefaultPodSubnet || nw.ServiceSubnet != DefaultServiceSubnet ||
		nw.IPFamily != v1alpha4.IPv4Family || nw.KubeProxyMode != v1alpha4.IPTablesProxyMode {
		t.Errorf("networking %+v", nw)
	}
}

func TestKindConfigPinsEtcd(t *testing.T) {
	o, _ := Options{Name: "x"}.withDefaults()
	c := KindConfig(o)
	if len(c.KubeadmConfigPatches) != 1 || !strings.Contains(c.KubeadmConfigPatches[0], `imageTag: "`+EtcdImageTag+`"`) {
		t.Errorf("patches %q", c.KubeadmConfigPatches)
	}
}

// The node image preloads etcd as ETCD_VERSION (hack/versions.env) with
// kubeadm's "-0" suffix; KindConfig must ask for that tag.
func TestEtcdImageTagMatchesVersions(t *testing.T) {
	b, err := os.ReadFile("../hack/versions.env")
	if err != nil {
		t.Skipf("no hack/versions.env: %v", err)
	}
	m := regexp.MustCompile(`(?m)^ETCD_VERSION=v(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no ETCD_VERSION in hack/versions.env")
	}
	if want := string(m[1]) + "-0"; EtcdImageTag != want {
		t.Errorf("EtcdImageTag %q, hack/versions.env says %q", EtcdImageTag, want)
	}
}

// A stock kindest/node image is one flag away: kind's own CNI and etcd,
// no offline pod network; the offline image keeps both off.
func TestStockNodeImage(t *testing.T) {
	for _, img := range []string{"kindest/node:v1.34.0", "docker.io/kindest/node:v1.34.0@sha256:abcd", "kindest/node"} {
		if !StockImage(img) {
			t.Errorf("%s: not taken for a stock image", img)
		}
	}
	for _, img := range []string{DefaultNodeImage, "example.com/kindest/node:v1", "kindest/node-custom:v1"} {
		if StockImage(img) {
			t.Errorf("%s: taken for a stock image", img)
		}
	}
	t.Setenv(NodeImageEnv, "kindest/node:v1.34.0")
	o, err := Options{Name: "elb-stock"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.NodeImage != "kindest/node:v1.34.0" {
		t.Fatalf("%s not honoured: node image %q", NodeImageEnv, o.NodeImage)
	}
	c := KindConfig(o)
	if c.Networking.DisableDefaultCNI || len(c.KubeadmConfigPatches) != 0 {
		t.Errorf("stock image: DisableDefaultCNI %v, patches %q; want kind's CNI and etcd", c.Networking.DisableDefaultCNI, c.KubeadmConfigPatches)
	}
	for _, n := range c.Nodes {
		if n.Image != "kindest/node:v1.34.0" {
			t.Errorf("node image %q", n.Image)
		}
	}
	t.Setenv(NodeImageEnv, "")
	off, _ := Options{Name: "elb-offline"}.withDefaults()
	if c := KindConfig(off); !c.Networking.DisableDefaultCNI || len(c.KubeadmConfigPatches) != 1 || off.NodeImage != DefaultNodeImage {
		t.Errorf("offline image: %+v, patches %q", c.Networking, c.KubeadmConfigPatches)
	}
}
