// Package testenv runs a real, pinned etcd and kube-apiserver on loopback for
// integration tests, benchmarks and the lab. Nothing is faked: the CRDs from
// deploy/crds are installed into a real apiserver, which the code under test
// reaches over HTTPS.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/ecmplb/ecmplb/internal/proc"
)

// Options tune Start.
type Options struct {
	// CRDDir holds the CRD manifests to install; default <repo>/deploy/crds.
	CRDDir string
	// Namespaces are created once the apiserver is up; default metallb-system.
	Namespaces []string
	// Authorization is the apiserver's --authorization-mode; default
	// AlwaysAllow. With "RBAC" the admin credentials still work (they are in
	// system:masters) and ServiceAccount tokens are subject to RBAC.
	Authorization string
	// ExtraAPIServerArgs are appended to the kube-apiserver command line.
	ExtraAPIServerArgs []string
	// Dir is where data, certificates and logs go; default a new temporary
	// directory, removed by Stop.
	Dir string
	// Stderr receives the control plane's logs when set; otherwise they go to
	// files in Dir (etcd.log, kube-apiserver.log).
	Stderr *os.File
}

// Env is a running control plane.
type Env struct {
	// Config is an admin client configuration (group system:masters).
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same credentials,
	// for child processes.
	Kubeconfig string
	// URL is the apiserver's address, https://127.0.0.1:PORT.
	URL string
	// Dir holds data, certificates and logs.
	Dir string

	ownDir  bool
	etcd    *proc.Process
	api     *proc.Process
	apiBin  string
	apiArgs []string
	stderr  *os.File
}

// Start launches the control plane for a test and stops it in t.Cleanup.
// A missing binary fails the test with the command that builds it.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := StartProcess(ctx, opts)
	if err != nil {
		t.Fatalf("starting the test control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Logf("stopping the test control plane: %v", err)
		}
	})
	return env
}

// StartProcess launches the control plane for a program (a benchmark, the
// lab). The caller must call Stop.
func StartProcess(ctx context.Context, opts Options) (_ *Env, err error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bins, err := FindBinaries(root)
	if err != nil {
		return nil, err
	}
	if opts.CRDDir == "" {
		opts.CRDDir = filepath.Join(root, "deploy", "crds")
	}
	if opts.Namespaces == nil {
		opts.Namespaces = []string{"metallb-system"}
	}
	env := &Env{Dir: opts.Dir, stderr: opts.Stderr}
	if env.Dir == "" {
		if env.Dir, err = os.MkdirTemp("", "ecmplb-testenv-"); err != nil {
			return nil, err
		}
		env.ownDir = true
	} else if err := os.MkdirAll(env.Dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = env.Stop()
		}
	}()

	ports, err := FreeLoopbackPorts(3)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	env.etcd, err = startProcess(env.Dir, "etcd", opts.Stderr, bins.Etcd,
		"--name=ecmplb-test",
		"--data-dir="+filepath.Join(env.Dir, "etcd-data"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=ecmplb-test="+peerURL,
		// Test data is thrown away; fsync would only slow every write.
		"--unsafe-no-fsync",
		"--quota-backend-bytes=8589934592",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, etcdURL+"/health", env.etcd); err != nil {
		return nil, fmt.Errorf("etcd did not become healthy: %w (log: %s)", err, env.etcd.LogPath)
	}

	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	certDir := filepath.Join(env.Dir, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(certDir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(token+",admin,admin,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	saKey := filepath.Join(certDir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return nil, err
	}
	authz := opts.Authorization
	if authz == "" {
		authz = "AlwaysAllow"
	}
	// The settings the reference benchmark figures were taken with
	// (ENVIRONMENT.md): no priority and fairness, generous in-flight limits.
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + certDir,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=" + authz,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		// Dual stack, so Services can ask for IPv6 and both families.
		"--service-cluster-ip-range=10.96.0.0/16,fd00:96::/108",
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--max-requests-inflight=2000",
		"--max-mutating-requests-inflight=1000",
		"--disable-admission-plugins=ServiceAccount",
		"--v=1",
	}
	args = append(args, opts.ExtraAPIServerArgs...)
	env.apiBin, env.apiArgs = bins.KubeAPIServer, args
	env.api, err = startProcess(env.Dir, "kube-apiserver", opts.Stderr, bins.KubeAPIServer, args...)
	if err != nil {
		return nil, err
	}
	env.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	if err := waitServing(ctx, filepath.Join(certDir, "apiserver.crt"), env.api); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		return nil, err
	}
	env.Config = &rest.Config{
		Host:            env.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS:             5000,
		Burst:           10000,
	}
	if err := waitReady(ctx, env.Config, env.api); err != nil {
		return nil, err
	}
	if env.Kubeconfig, err = writeKubeconfig(env.Dir, env.URL, token, ca); err != nil {
		return nil, err
	}
	if err := InstallCRDs(ctx, env.Config, opts.CRDDir); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		return nil, err
	}
	for _, ns := range opts.Namespaces {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating namespace %s: %w", ns, err)
		}
	}
	return env, nil
}

// Stop ends the apiserver and etcd and removes the directory Start created.
func (e *Env) Stop() error {
	var errs []error
	if e.api != nil {
		e.api.Stop(5 * time.Second)
		e.api = nil
	}
	if e.etcd != nil {
		e.etcd.Stop(5 * time.Second)
		e.etcd = nil
	}
	if e.ownDir && e.Dir != "" {
		errs = append(errs, os.RemoveAll(e.Dir))
		e.Dir = ""
	}
	return errors.Join(errs...)
}

// StopAPIServer stops kube-apiserver (SIGTERM, killed after 5 s) and leaves
// etcd running: an apiserver outage as clients see it (connections refused).
// StartAPIServer brings it back.
func (e *Env) StopAPIServer() {
	if e.api != nil {
		e.api.Stop(5 * time.Second)
	}
}

// StartAPIServer starts a stopped kube-apiserver again on the same address,
// with the same certificates and credentials (Config and Kubeconfig stay
// valid), and returns once it reports ready.
func (e *Env) StartAPIServer(ctx context.Context) error {
	if e.api != nil {
		if exited, _ := e.api.Exited(); !exited {
			return errors.New("kube-apiserver is running")
		}
	}
	p, err := restartProcess(e.Dir, "kube-apiserver", e.stderr, e.apiBin, e.apiArgs...)
	if err != nil {
		return err
	}
	e.api = p
	return waitReady(ctx, e.Config, p)
}

// APIServerPID is the process id of the apiserver, for memory reports (0
// while it is stopped).
func (e *Env) APIServerPID() int {
	if e.api == nil {
		return 0
	}
	if exited, _ := e.api.Exited(); exited {
		return 0
	}
	return e.api.PID()
}

// EtcdPID is the process id of etcd, for memory reports.
func (e *Env) EtcdPID() int { return e.etcd.PID() }

// readyTimeout bounds the wait for kube-apiserver's /readyz (it takes 1-3 s
// on the 2-core machine, up to 20 s under load); readyTryTimeout one try.
const (
	readyTimeout    = 2 * time.Minute
	readyTryTimeout = 3 * time.Second
)

func waitReady(ctx context.Context, cfg *rest.Config, p *proc.Process) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var last error
	// Each try is bounded (a connection that hangs is abandoned and dialled
	// afresh), and so is the whole wait when the caller set no deadline.
	deadline := time.Now().Add(readyTimeout)
	for {
		try, cancel := context.WithTimeout(ctx, readyTryTimeout)
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(try)
		cancel()
		if err == nil && string(body) == "ok" {
			return nil
		}
		last = err
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready after %v: %v (log: %s)", readyTimeout, last, p.LogPath)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready: %v (log: %s)", last, p.LogPath)
		case <-p.Done():
			_, err := p.Exited()
			return fmt.Errorf("kube-apiserver exited: %v (log: %s)", err, p.LogPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitServing(ctx context.Context, certPath string, p *proc.Process) error {
	for {
		if _, err := os.Stat(certPath); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver wrote no serving certificate (log: %s)", p.LogPath)
		case <-p.Done():
			_, err := p.Exited()
			return fmt.Errorf("kube-apiserver exited: %v (log: %s)", err, p.LogPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func writeKubeconfig(dir, url, token string, ca []byte) (string, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["ecmplb"] = &clientcmdapi.Cluster{Server: url, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["ecmplb"] = &clientcmdapi.Context{Cluster: "ecmplb", AuthInfo: "admin"}
	cfg.CurrentContext = "ecmplb"
	path := filepath.Join(dir, "kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func writeRSAKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return os.WriteFile(path, data, 0o600)
}
