package kindconfig

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WithoutUpstream returns a Corefile without its `forward` directive
// (one line, or a block in braces). The cluster network is internal, so
// there is no upstream resolver; and the one kubeadm's Corefile forwards to
// (/etc/resolv.conf, Docker's embedded DNS at 127.0.0.11) would be CoreDNS's
// own loopback inside its pod, which the loop plugin rightly treats as fatal.
// Cluster names resolve as before; other names are refused.
func WithoutUpstream(corefile string) (string, error) {
	lines := strings.Split(corefile, "\n")
	out := make([]string, 0, len(lines))
	removed := false
	for i := 0; i < len(lines); i++ {
		f := strings.Fields(lines[i])
		if len(f) == 0 || f[0] != "forward" {
			out = append(out, lines[i])
			continue
		}
		removed = true
		if !strings.HasSuffix(strings.TrimSpace(lines[i]), "{") {
			continue
		}
		// Skip the block up to its closing brace.
		depth := 1
		for depth > 0 {
			i++
			if i >= len(lines) {
				return "", fmt.Errorf("corefile: forward block not closed")
			}
			depth += strings.Count(lines[i], "{") - strings.Count(lines[i], "}")
		}
	}
	if !removed {
		return corefile, nil
	}
	return strings.Join(out, "\n"), nil
}

// dropDNSUpstream rewrites kube-system/coredns's Corefile with
// WithoutUpstream and deletes the CoreDNS pods so that new ones start with it.
func (c *Cluster) dropDNSUpstream(ctx context.Context) error {
	cms := c.Client().CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("coredns configmap: %w", err)
	}
	core, err := WithoutUpstream(cm.Data["Corefile"])
	if err != nil {
		return err
	}
	if core == cm.Data["Corefile"] {
		return nil
	}
	cm.Data["Corefile"] = core
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("coredns configmap: %w", err)
	}
	err = c.Client().CoreV1().Pods("kube-system").DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
	if err != nil {
		return fmt.Errorf("restart coredns: %w", err)
	}
	c.log.Info("coredns: no upstream resolver on the internal network")
	return nil
}
