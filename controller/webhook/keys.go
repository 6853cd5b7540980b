package webhook

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"time"
)

// Keys of the certificate Secret (those cert-controller used, which earlier
// releases ran, so its Secrets are read as they are).
const (
	certKey   = "tls.crt"
	keyKey    = "tls.key"
	caCertKey = "ca.crt"
	caKeyKey  = "ca.key"
)

// backdate is how far before its making a certificate is valid from, for
// clocks that run behind.
const backdate = time.Hour

// certSpec is what the certificate Secret must hold: a CA and a serving
// certificate it signed for every one of dnsNames, neither expiring within
// lookahead.
type certSpec struct {
	caName, caOrg            string
	dnsNames                 []string // the first is also the subject
	caValidity, certValidity time.Duration
	lookahead                time.Duration
}

// newP256Key makes the key of a new certificate: ECDSA P-256, a few tens of
// microseconds where an RSA 2048 key, a random search for primes, takes
// 0.1-0.5 s of CPU.
func newP256Key() (crypto.Signer, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// renew checks the Secret's data at now. It returns the data to write in
// its place (nil when the Secret is good as it is) with what was wrong,
// and when to look again: lookahead before the first of the two
// certificates expires. A CA that is still good is kept (the webhook
// configurations trust it); a new serving certificate needs only a new key
// of its own.
func (s certSpec) renew(data map[string][]byte, now time.Time, newKey func() (crypto.Signer, error)) (out map[string][]byte, why string, next time.Time, err error) {
	at := now.Add(s.lookahead)
	ca, caKey, caErr := parseCA(data[caCertKey], data[caKeyKey], now, at)
	if caErr == nil {
		leaf, leafErr := s.checkLeaf(ca, data[certKey], data[keyKey], now, at)
		if leafErr == nil {
			return nil, "", earlier(ca.NotAfter, leaf.NotAfter).Add(-s.lookahead), nil
		}
		why = "serving certificate: " + leafErr.Error()
	} else {
		why = "CA: " + caErr.Error()
	}
	out = maps.Clone(data)
	if out == nil {
		out = map[string][]byte{}
	}
	if caErr != nil {
		key, err := newKey()
		if err != nil {
			return nil, "", time.Time{}, fmt.Errorf("CA key: %w", err)
		}
		tmpl := &x509.Certificate{
			Subject:               pkix.Name{CommonName: s.caName, Organization: []string{s.caOrg}},
			NotBefore:             now.Add(-backdate),
			NotAfter:              now.Add(s.caValidity),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		}
		if ca, out[caCertKey], out[caKeyKey], err = sign(tmpl, nil, key, key); err != nil {
			return nil, "", time.Time{}, fmt.Errorf("CA: %w", err)
		}
		caKey = key
	}
	key, err := newKey()
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: s.dnsNames[0], Organization: []string{s.caOrg}},
		DNSNames:    s.dnsNames,
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(s.certValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leaf, crt, keyPEM, err := sign(tmpl, ca, key, caKey)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("serving certificate: %w", err)
	}
	out[certKey], out[keyKey] = crt, keyPEM
	return out, why, earlier(ca.NotAfter, leaf.NotAfter).Add(-s.lookahead), nil
}

// parseCA reads a CA certificate and its key: a self-signed CA whose key
// matches it, valid now and still at at.
func parseCA(certPEM, keyPEM []byte, now, at time.Time) (*x509.Certificate, crypto.Signer, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, nil, errors.New("none")
	}
	ca, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, err
	}
	if !ca.IsCA {
		return nil, nil, errors.New("not a CA certificate")
	}
	if err := ca.CheckSignatureFrom(ca); err != nil {
		return nil, nil, fmt.Errorf("not self-signed: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, err
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(ca.PublicKey) {
		return nil, nil, errors.New("the key is not the certificate's")
	}
	if err := inTime(ca, now, at); err != nil {
		return nil, nil, err
	}
	return ca, key, nil
}

// checkLeaf reads the serving certificate and its key: a pair, signed by
// ca for every name and for server authentication, valid now and still at
// at.
func (s certSpec) checkLeaf(ca *x509.Certificate, certPEM, keyPEM []byte, now, at time.Time) (*x509.Certificate, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, errors.New("none")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf := pair.Leaf
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, name := range s.dnsNames {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			return nil, err
		}
	}
	if err := inTime(leaf, now, at); err != nil {
		return nil, err
	}
	return leaf, nil
}

// inTime says whether c is valid now and will still be at at.
func inTime(c *x509.Certificate, now, at time.Time) error {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Errorf("not valid before %s", c.NotBefore.Format(time.RFC3339))
	case !at.Before(c.NotAfter):
		return fmt.Errorf("expires %s, within the renewal lookahead", c.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// sign makes a certificate of tmpl for key's public key, signed by parent
// with parentKey (parent nil: self-signed), and returns it parsed and both
// it and key in PEM.
func sign(tmpl, parent *x509.Certificate, key, parentKey crypto.Signer) (*x509.Certificate, []byte, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), nil
}

func parseCert(data []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// parseKey reads a private key in PKCS #8, PKCS #1 (RSA, as cert-controller
// wrote them) or SEC 1 (EC).
func parseKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM key")
	}
	var k any
	var err error
	switch b.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a %T cannot sign", k)
	}
	return s, nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
