package kubernetes

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Finding is the outcome of one cluster check of Check.
type Finding struct {
	Name   string // "cluster", "namespace", "permissions", "storage class", "nodes"
	OK     bool
	Detail string
}

// Check examines the cluster for `kod doctor`: the API server answers;
// the namespace exists (else whether kod may create it, and it is
// created); kod may create, list and delete pods, Secrets and claims there
// and read pod logs and attach (SelfSubjectAccessReview); a storage class
// exists (the configured one, or a default); nodes are ready. Checks kod
// lacks the permission for are reported as not verified, not failed.
func (k *Kubernetes) Check(ctx context.Context) []Finding {
	v, err := k.cs.Discovery().ServerVersion()
	if err != nil {
		return []Finding{{"cluster", false, fmt.Sprintf("the API server is unreachable: %v", err)}}
	}
	out := []Finding{{"cluster", true, "API server " + v.GitVersion}}
	out = append(out, k.checkNamespace(ctx))
	out = append(out, k.checkPermissions(ctx))
	out = append(out, k.checkStorageClass(ctx))
	out = append(out, k.checkNodes(ctx))
	return out
}

// EnsureNamespace creates the namespace if it is missing and kod may.
func (k *Kubernetes) EnsureNamespace(ctx context.Context) error {
	_, err := k.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: k.cfg.Namespace}}, metav1.CreateOptions{})
	if err == nil || apierrors.IsAlreadyExists(err) {
		return nil
	}
	return apiErr("create namespace "+k.cfg.Namespace, err)
}

func (k *Kubernetes) checkNamespace(ctx context.Context) Finding {
	ns := k.cfg.Namespace
	_, err := k.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil:
		return Finding{"namespace", true, ns + " exists"}
	case apierrors.IsForbidden(err):
		// Without cluster read access, a list in the namespace still works.
		if _, err := k.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return Finding{"namespace", false, fmt.Sprintf("cannot use namespace %s: %v", ns, err)}
		}
		return Finding{"namespace", true, ns + " usable (existence not verified: no permission to read namespaces)"}
	case apierrors.IsNotFound(err):
		if err := k.EnsureNamespace(ctx); err != nil {
			return Finding{"namespace", false, fmt.Sprintf("%s does not exist and cannot be created: %v", ns, err)}
		}
		return Finding{"namespace", true, ns + " created"}
	}
	return Finding{"namespace", false, fmt.Sprintf("reading namespace %s: %v", ns, err)}
}

// needed lists what the backend does in its namespace (docs/kubernetes.md).
var needed = []struct {
	group, resource, sub string
	verbs                []string
}{
	{"", "pods", "", []string{"create", "get", "list", "watch", "patch", "delete"}},
	{"", "pods", "log", []string{"get"}},
	{"", "pods", "attach", []string{"create"}},
	{"", "secrets", "", []string{"create", "list", "delete"}},
	{"", "persistentvolumeclaims", "", []string{"create", "list", "delete"}},
	{"networking.k8s.io", "networkpolicies", "", []string{"create", "list", "delete"}},
}

func (k *Kubernetes) checkPermissions(ctx context.Context) Finding {
	var missing []string
	for _, n := range needed {
		for _, verb := range n.verbs {
			r, err := k.cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
				Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
					Namespace: k.cfg.Namespace, Verb: verb, Group: n.group, Resource: n.resource, Subresource: n.sub,
				}},
			}, metav1.CreateOptions{})
			if err != nil {
				return Finding{"permissions", false, fmt.Sprintf("cannot review permissions: %v", err)}
			}
			if !r.Status.Allowed {
				what := n.resource
				if n.sub != "" {
					what += "/" + n.sub
				}
				missing = append(missing, verb+" "+what)
			}
		}
	}
	if len(missing) > 0 {
		return Finding{"permissions", false, "missing in namespace " + k.cfg.Namespace + ": " + strings.Join(missing, ", ") + " (see docs/kubernetes.md)"}
	}
	return Finding{"permissions", true, "pods, pods/log, pods/attach, secrets, persistentvolumeclaims, networkpolicies"}
}

func (k *Kubernetes) checkStorageClass(ctx context.Context) Finding {
	classes, err := k.cs.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) {
		return Finding{"storage class", true, "not verified: no permission to list storage classes"}
	}
	if err != nil {
		return Finding{"storage class", false, fmt.Sprintf("listing storage classes: %v", err)}
	}
	for _, c := range classes.Items {
		if k.cfg.StorageClass != "" && c.Name == k.cfg.StorageClass {
			return Finding{"storage class", true, c.Name + " (" + c.Provisioner + ")"}
		}
		if k.cfg.StorageClass == "" && c.Annotations["storageclass.kubernetes.io/is-default-class"] == "true" {
			return Finding{"storage class", true, c.Name + " (default, " + c.Provisioner + ")"}
		}
	}
	if k.cfg.StorageClass != "" {
		return Finding{"storage class", false, fmt.Sprintf("storage class %q does not exist (KOD_KUBE_STORAGE_CLASS)", k.cfg.StorageClass)}
	}
	return Finding{"storage class", false, "the cluster has no default storage class: set KOD_KUBE_STORAGE_CLASS"}
}

func (k *Kubernetes) checkNodes(ctx context.Context) Finding {
	nodes, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if apierrors.IsForbidden(err) {
		return Finding{"nodes", true, "not verified: no permission to list nodes"}
	}
	if err != nil {
		return Finding{"nodes", false, fmt.Sprintf("listing nodes: %v", err)}
	}
	ready := 0
	for _, n := range nodes.Items {
		if nodeReady(n.Status.Conditions) {
			ready++
		}
	}
	if ready == 0 {
		return Finding{"nodes", false, fmt.Sprintf("none of %d nodes is ready", len(nodes.Items))}
	}
	return Finding{"nodes", true, fmt.Sprintf("%d of %d ready", ready, len(nodes.Items))}
}

func nodeReady(conds []corev1.NodeCondition) bool {
	for _, c := range conds {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
