package conversion

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// stripDescriptions removes every description from a schema.
func stripDescriptions(s *apiextensionsv1.JSONSchemaProps) {
	if s == nil {
		return
	}
	s.Description = ""
	for k, p := range s.Properties {
		stripDescriptions(&p)
		s.Properties[k] = p
	}
	if s.Items != nil {
		stripDescriptions(s.Items.Schema)
	}
	if s.AdditionalProperties != nil {
		stripDescriptions(s.AdditionalProperties.Schema)
	}
}

// The generated CRD serves both versions, stores v1beta2, and gives them
// the same schema (descriptions aside): so the default None conversion it
// ships with is lossless, and a v1beta1 write is validated as a v1beta2 one.
func TestBGPPeerCRD(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "crds", "metallb.io_bgppeers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		t.Fatal(err)
	}
	if c := crd.Spec.Conversion; c != nil && c.Strategy != apiextensionsv1.NoneConverter {
		t.Errorf("conversion %+v, want None (the chart sets the webhook)", c)
	}
	versions := map[string]apiextensionsv1.CustomResourceDefinitionVersion{}
	for _, v := range crd.Spec.Versions {
		versions[v.Name] = v
	}
	v1, v2 := versions["v1beta1"], versions["v1beta2"]
	if len(versions) != 2 || !v1.Served || !v2.Served || v1.Storage || !v2.Storage {
		t.Fatalf("versions %+v: want v1beta1 served, v1beta2 served and stored", crd.Spec.Versions)
	}
	s1, s2 := v1.Schema.OpenAPIV3Schema.DeepCopy(), v2.Schema.OpenAPIV3Schema.DeepCopy()
	stripDescriptions(s1)
	stripDescriptions(s2)
	if !reflect.DeepEqual(s1, s2) {
		a, _ := yaml.Marshal(s1)
		b, _ := yaml.Marshal(s2)
		t.Fatalf("schemas differ:\nv1beta1:\n%s\nv1beta2:\n%s", a, b)
	}
	if !reflect.DeepEqual(v1.AdditionalPrinterColumns, v2.AdditionalPrinterColumns) || len(v2.AdditionalPrinterColumns) == 0 {
		t.Errorf("printer columns differ: %+v / %+v", v1.AdditionalPrinterColumns, v2.AdditionalPrinterColumns)
	}
}
