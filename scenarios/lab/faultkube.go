package lab

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ecmplb/ecmplb/internal/testenv"
)

// TryApply runs `kubectl apply -f file` and returns kubectl's output and
// whether the apiserver accepted the object(s); err is for failures to run
// kubectl at all.
func (l *Lab) TryApply(ctx context.Context, file string) (out string, accepted bool, err error) {
	bins, err := testenv.FindBinaries(l.Root)
	if err != nil {
		return "", false, err
	}
	b, err := exec.CommandContext(ctx, bins.Kubectl, "--kubeconfig", l.Env.Kubeconfig, "apply", "-f", file).CombinedOutput()
	out = strings.TrimSpace(string(b))
	if _, ok := err.(*exec.ExitError); ok {
		return out, false, nil
	}
	return out, err == nil, err
}

// DeleteFiles runs `kubectl delete --ignore-not-found -f` on each file.
func (l *Lab) DeleteFiles(ctx context.Context, files ...string) error {
	bins, err := testenv.FindBinaries(l.Root)
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := exec.CommandContext(ctx, bins.Kubectl, "--kubeconfig", l.Env.Kubeconfig, "delete", "--ignore-not-found", "--wait=false", "-f", f).CombinedOutput()
		if err != nil {
			return fmt.Errorf("kubectl delete -f %s: %w\n%s", f, err, b)
		}
	}
	return nil
}

// CreateLBService creates a LoadBalancer Service with externalTrafficPolicy
// Local (only nodes with a ready endpoint announce it) and no node ports.
func (l *Lab) CreateLBService(ctx context.Context, namespace, name string) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.ServiceSpec{
			Type:                          corev1.ServiceTypeLoadBalancer,
			ExternalTrafficPolicy:         corev1.ServiceExternalTrafficPolicyLocal,
			AllocateLoadBalancerNodePorts: ptr.To(false),
			Selector:                      map[string]string{"app": name},
			Ports:                         []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	_, err := l.Kube.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating Service %s/%s: %w", namespace, name, err)
	}
	return nil
}

// DeleteService deletes a Service and the EndpointSlice SetEndpoints wrote.
func (l *Lab) DeleteService(ctx context.Context, namespace, name string) error {
	err := l.Kube.DiscoveryV1().EndpointSlices(namespace).Delete(ctx, name+"-lab", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	err = l.Kube.CoreV1().Services(namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
