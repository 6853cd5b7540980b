package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"
)

// WebhookSetup is what InstallWebhooks created or changed.
type WebhookSetup struct {
	// Configuration is the ValidatingWebhookConfiguration's name.
	Configuration string
	// ConversionCRD is the CRD given a conversion webhook ("" if none).
	ConversionCRD string
	// Secret is the (initially empty) certificate Secret, namespace/name.
	SecretNamespace, SecretName string
}

// InstallWebhooks makes the webhooks of the rendered manifests (e.g.
// deploy/ecmplb.yaml) reachable from this apiserver, which cannot reach
// Services: it creates or updates their ValidatingWebhookConfiguration and
// sets the conversion webhook of the CRD that has one, each with a url
// clientConfig, baseURL + the path the manifests give (baseURL e.g.
// https://localhost:PORT, a name the serving certificate must cover). It
// also creates the manifests' empty certificate Secret if it is missing.
// Rules, failure policy and the rest are the manifests' own.
func InstallWebhooks(ctx context.Context, cfg *rest.Config, manifests []byte, baseURL string) (WebhookSetup, error) {
	var setup WebhookSetup
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return setup, err
	}
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return setup, err
	}
	for _, doc := range bytes.Split(manifests, []byte("\n---")) {
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil || head.Kind == "" {
			continue
		}
		switch head.Kind {
		case "ValidatingWebhookConfiguration":
			var vwc admissionregistrationv1.ValidatingWebhookConfiguration
			if err := yaml.UnmarshalStrict(doc, &vwc); err != nil {
				return setup, fmt.Errorf("ValidatingWebhookConfiguration: %w", err)
			}
			for i := range vwc.Webhooks {
				toURL(&vwc.Webhooks[i].ClientConfig, baseURL)
			}
			if err := applyVWC(ctx, cs, &vwc); err != nil {
				return setup, err
			}
			setup.Configuration = vwc.Name
		case "CustomResourceDefinition":
			var crd apiextensionsv1.CustomResourceDefinition
			if err := yaml.Unmarshal(doc, &crd); err != nil {
				return setup, fmt.Errorf("CRD: %w", err)
			}
			conv := crd.Spec.Conversion
			if conv == nil || conv.Webhook == nil || conv.Webhook.ClientConfig == nil {
				continue
			}
			if err := convertAt(ctx, ext, crd.Name, conv, baseURL); err != nil {
				return setup, err
			}
			setup.ConversionCRD = crd.Name
		case "Secret":
			var sec corev1.Secret
			if err := yaml.Unmarshal(doc, &sec); err != nil {
				return setup, fmt.Errorf("Secret: %w", err)
			}
			if !strings.Contains(sec.Name, "webhook") {
				continue
			}
			_, err := cs.CoreV1().Secrets(sec.Namespace).Create(ctx, &sec, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return setup, fmt.Errorf("Secret %s: %w", sec.Name, err)
			}
			setup.SecretNamespace, setup.SecretName = sec.Namespace, sec.Name
		}
	}
	if setup.Configuration == "" || setup.SecretName == "" {
		return setup, fmt.Errorf("the manifests hold no ValidatingWebhookConfiguration or no webhook Secret")
	}
	return setup, nil
}

// InstallWebhooksFromFile is InstallWebhooks with the manifests in a file.
func InstallWebhooksFromFile(ctx context.Context, cfg *rest.Config, path, baseURL string) (WebhookSetup, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return WebhookSetup{}, err
	}
	return InstallWebhooks(ctx, cfg, data, baseURL)
}

// toURL replaces a service reference by baseURL + its path.
func toURL(cc *admissionregistrationv1.WebhookClientConfig, baseURL string) {
	path := ""
	if cc.Service != nil && cc.Service.Path != nil {
		path = *cc.Service.Path
	}
	u := baseURL + path
	cc.Service, cc.URL = nil, &u
}

func applyVWC(ctx context.Context, cs kubernetes.Interface, vwc *admissionregistrationv1.ValidatingWebhookConfiguration) error {
	api := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		old, err := api.Get(ctx, vwc.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = api.Create(ctx, vwc, metav1.CreateOptions{})
			return err
		case err != nil:
			return err
		}
		vwc.ResourceVersion = old.ResourceVersion
		_, err = api.Update(ctx, vwc, metav1.UpdateOptions{})
		return err
	})
}

func convertAt(ctx context.Context, ext apiextensionsclient.Interface, name string, conv *apiextensionsv1.CustomResourceConversion, baseURL string) error {
	path := ""
	if s := conv.Webhook.ClientConfig.Service; s != nil && s.Path != nil {
		path = *s.Path
	}
	u := baseURL + path
	api := ext.ApiextensionsV1().CustomResourceDefinitions()
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		crd, err := api.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("CRD %s: %w", name, err)
		}
		c := conv.DeepCopy()
		c.Webhook.ClientConfig = &apiextensionsv1.WebhookClientConfig{URL: &u}
		crd.Spec.Conversion = c
		_, err = api.Update(ctx, crd, metav1.UpdateOptions{})
		return err
	})
}
