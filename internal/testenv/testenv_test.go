package testenv

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestAPIServerStopAndStart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the pinned kube-apiserver and etcd")
	}
	env := Start(t, Options{})
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "metallb-system", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	env.StopAPIServer()
	if env.APIServerPID() != 0 {
		t.Fatal("apiserver still reported running")
	}
	short, scancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = cs.CoreV1().Namespaces().Get(short, "metallb-system", metav1.GetOptions{})
	scancel()
	if err == nil {
		t.Fatal("apiserver answered while stopped")
	}
	if err := env.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	// Same address, credentials and data (etcd kept running).
	if _, err := cs.CoreV1().Namespaces().Get(ctx, "metallb-system", metav1.GetOptions{}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
