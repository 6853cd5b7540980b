package backend

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// KubeServiceEvents lists the Events whose involved object is the Service,
// for backends that reach the apiserver with client-go (both do).
func KubeServiceEvents(ctx context.Context, kube kubernetes.Interface, namespace, name string) ([]ServiceEvent, error) {
	list, err := kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Service,involvedObject.name=" + name,
	})
	if err != nil {
		return nil, fmt.Errorf("events of Service %s/%s: %w", namespace, name, err)
	}
	out := make([]ServiceEvent, 0, len(list.Items))
	for _, e := range list.Items {
		last := e.LastTimestamp.Time
		if last.IsZero() {
			last = e.EventTime.Time
		}
		out = append(out, ServiceEvent{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: e.Count, Last: last})
	}
	return out, nil
}
