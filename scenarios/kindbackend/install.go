package kindbackend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ecmplb/ecmplb/deploy/helmchart"
	"github.com/ecmplb/ecmplb/kindconfig"
)

// Images are the image archives `make images` writes into bin/images.
var Images = []string{"ecmplb-controller", "ecmplb-speaker", "ecmplb-echo"}

// SpeakerNodeLabel marks the nodes the speaker DaemonSet runs on (the
// chart's speaker.nodeSelector).
const SpeakerNodeLabel = "ecmplb.io/speaker"

// Namespace is the namespace the chart installs into (its default).
const Namespace = "metallb-system"

// Labels of the chart's pods.
const (
	speakerSelector    = "app.kubernetes.io/name=ecmplb,app.kubernetes.io/component=speaker"
	controllerSelector = "app.kubernetes.io/name=ecmplb,app.kubernetes.io/component=controller"
)

// InstallOptions says what Install deploys where.
type InstallOptions struct {
	// Root is the repository root (the chart is Root/deploy/chart/ecmplb).
	Root string
	// ImageDir holds the archives named in Images (<name>.tar); default
	// Root/bin/images.
	ImageDir string
	// Tag is the images' tag (make images' IMAGE_TAG, default "dev").
	Tag string
	// SpeakerNodes are the nodes that run a speaker.
	SpeakerNodes []string
	// Kubectl is the kubectl binary (default "kubectl" from PATH).
	Kubectl string
	// Timeout bounds the wait for the pods (default 3 minutes).
	Timeout time.Duration
	// LogLevel is the chart's logLevel; "": the chart's default (info).
	LogLevel string
}

// Values are the chart values Install renders with: the images from the
// nodes' containerd (pull policy Never, nothing is pulled), the speaker on
// the labelled nodes only.
func (o InstallOptions) Values() map[string]any {
	v := map[string]any{
		"image":   map[string]any{"tag": o.Tag, "pullPolicy": "Never"},
		"speaker": map[string]any{"nodeSelector": map[string]any{SpeakerNodeLabel: "true"}},
	}
	if o.LogLevel != "" {
		v["logLevel"] = o.LogLevel
	}
	return v
}

func (o InstallOptions) withDefaults() InstallOptions {
	if o.ImageDir == "" {
		o.ImageDir = filepath.Join(o.Root, "bin", "images")
	}
	if o.Tag == "" {
		o.Tag = "dev"
	}
	if o.Kubectl == "" {
		o.Kubectl = "kubectl"
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	return o
}

// Install deploys ecmplb into a running cluster, in the steps the README's
// "Deploying to a cluster" describes:
//
//  1. load the controller, speaker and echo image archives into every
//     node's containerd (no registry);
//  2. label the nodes that run a speaker (SpeakerNodeLabel=true);
//  3. render the Helm chart (CRDs, namespace, RBAC, controller Deployment,
//     speaker DaemonSet) with Values and apply it with kubectl;
//  4. wait until a speaker pod is Ready on every labelled node (and on no
//     other) and the controller Deployment is available.
func Install(ctx context.Context, c *kindconfig.Cluster, o InstallOptions) error {
	o = o.withDefaults()
	for _, img := range Images {
		archive := filepath.Join(o.ImageDir, img+".tar")
		if _, err := os.Stat(archive); err != nil {
			return fmt.Errorf("install: image %s: %w (run make images)", img, err)
		}
		if err := c.LoadImage(ctx, archive); err != nil {
			return fmt.Errorf("install: %w", err)
		}
	}
	if err := SetSpeakerNodes(ctx, c.Client(), o.SpeakerNodes); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	manifest, err := helmchart.Render(filepath.Join(o.Root, helmchart.Dir), o.Values())
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	f, err := os.CreateTemp("", "ecmplb-install-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(manifest); err != nil {
		f.Close()
		return err
	}
	f.Close()
	if out, err := kubectl(ctx, o.Kubectl, c.Kubeconfig(), "apply", "--server-side", "--force-conflicts", "-f", f.Name()); err != nil {
		return fmt.Errorf("install: apply the chart: %w\n%s", err, out)
	}
	return WaitDeployed(ctx, c.Client(), o.SpeakerNodes, o.Timeout)
}

// SetSpeakerNodes labels exactly the named nodes SpeakerNodeLabel=true (and
// removes the label from every other node).
func SetSpeakerNodes(ctx context.Context, kube kubernetes.Interface, nodes []string) error {
	list, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, want := range nodes {
		if !slices.ContainsFunc(list.Items, func(n corev1.Node) bool { return n.Name == want }) {
			return fmt.Errorf("no node %q", want)
		}
	}
	for i := range list.Items {
		n := &list.Items[i]
		want := slices.Contains(nodes, n.Name)
		if _, has := n.Labels[SpeakerNodeLabel]; has == want {
			continue
		}
		if want {
			n.Labels[SpeakerNodeLabel] = "true"
		} else {
			delete(n.Labels, SpeakerNodeLabel)
		}
		if _, err := kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("label node %s: %w", n.Name, err)
		}
	}
	return nil
}

// WaitDeployed waits until a Ready speaker pod runs on each of nodes and on
// no other node, and a controller pod is Ready.
func WaitDeployed(ctx context.Context, kube kubernetes.Interface, nodes []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		last = deployed(ctx, kube, nodes)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ecmplb not deployed after %s: %w", timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func deployed(ctx context.Context, kube kubernetes.Interface, nodes []string) error {
	pods, err := kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: speakerSelector})
	if err != nil {
		return err
	}
	var errs []error
	ready := map[string]bool{}
	for _, p := range pods.Items {
		if !slices.Contains(nodes, p.Spec.NodeName) {
			errs = append(errs, fmt.Errorf("speaker pod %s still on node %s", p.Name, p.Spec.NodeName))
			continue
		}
		if podReady(&p) && p.DeletionTimestamp == nil {
			ready[p.Spec.NodeName] = true
		}
	}
	for _, n := range nodes {
		if !ready[n] {
			errs = append(errs, fmt.Errorf("no Ready speaker on %s", n))
		}
	}
	ctrl, err := kube.CoreV1().Pods(Namespace).List(ctx, metav1.ListOptions{LabelSelector: controllerSelector})
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ctrl.Items, func(p corev1.Pod) bool { return podReady(&p) }) {
		errs = append(errs, errors.New("no Ready controller"))
	}
	return errors.Join(errs...)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// kubectl runs kubectl against the cluster and returns its combined output.
func kubectl(ctx context.Context, bin, kubeconfig string, args ...string) (string, error) {
	out, err := command(ctx, nil, bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	return strings.TrimSpace(out), err
}
