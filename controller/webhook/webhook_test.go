package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecmplb/ecmplb/internal/validation"
)

func TestReadyCheck(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	open := make(chan struct{})
	ok := func(*http.Request) error { return nil }
	notStarted := func(*http.Request) error { return errors.New("not started") }
	for _, tc := range []struct {
		name     string
		loaded   bool
		injected chan struct{}
		started  func(*http.Request) error
		ready    bool
	}{
		{"no certificate", false, closed, ok, false},
		{"CA not injected", true, open, ok, false},
		{"server not started", true, closed, notStarted, false},
		{"all in place", true, closed, ok, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := readyCheck(func() bool { return tc.loaded }, tc.injected, tc.started, "ns/s")(nil)
			if (err == nil) != tc.ready {
				t.Fatalf("ready = %v (%v), want %v", err == nil, err, tc.ready)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"one field", &validation.FieldError{Field: "spec.addresses[0]", Detail: "bad"},
			"IPAddressPool ns/p: spec.addresses[0]: bad"},
		{"joined", errors.Join(&validation.FieldError{Field: "spec.a", Detail: "x"}, &validation.FieldError{Field: "spec.b", Detail: "y"}),
			"IPAddressPool ns/p: spec.a: x; IPAddressPool ns/p: spec.b: y"},
		{"wrapped stays whole", fmt.Errorf("pool: %w", &validation.FieldError{Field: "spec.a", Detail: "x"}),
			"IPAddressPool ns/p: pool: spec.a: x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Message("IPAddressPool", "ns", "p", tc.err); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func selfSigned(t *testing.T) (crt, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// The certificate source serves what the Secret holds once it holds a
// valid pair, and copies it to the directory.
func TestCertSource(t *testing.T) {
	crt, key := selfSigned(t)
	for _, tc := range []struct {
		name   string
		data   map[string][]byte
		loaded bool
	}{
		{"empty Secret", nil, false},
		{"garbage", map[string][]byte{certKey: []byte("x"), keyKey: []byte("y")}, false},
		{"valid pair", map[string][]byte{certKey: crt, keyKey: key}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := &certSource{dir: dir, log: slog.New(slog.DiscardHandler)}
			s.update(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cert"}, Data: tc.data})
			if s.loaded() != tc.loaded {
				t.Fatalf("loaded = %v, want %v", s.loaded(), tc.loaded)
			}
			_, err := s.getCertificate(nil)
			if (err == nil) != tc.loaded {
				t.Fatalf("getCertificate: %v", err)
			}
			onDisk, _ := os.ReadFile(filepath.Join(dir, certKey))
			if tc.loaded != (string(onDisk) == string(crt)) {
				t.Fatalf("file holds %q", onDisk)
			}
		})
	}
}
