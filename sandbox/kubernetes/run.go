package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kod-forge/kod/sandbox"
)

// SetupRun creates the workspace claim kod-<key>-ws (ReadWriteOnce,
// Config.StorageClass, Config.WorkspaceSize; <key> as in the package doc)
// and its NetworkPolicy kod-<key>: the workspace's pods accept traffic only
// from each other, and with
// sandbox.NetworkNone (or on steps with NoNetwork) send none. A
// NetworkPolicy is enforced only by a CNI plugin that implements them.
// Objects left by an earlier attempt for the same run are reused.
func (k *Kubernetes) SetupRun(ctx context.Context, run *sandbox.RunSpec) error {
	if err := checkRun(run); err != nil {
		return err
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: objectMeta(claimName(run), run, nil),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: *resource.NewQuantity(k.cfg.WorkspaceSize, resource.BinarySI),
			}},
		},
	}
	if k.cfg.StorageClass != "" {
		pvc.Spec.StorageClassName = &k.cfg.StorageClass
	}
	_, err := k.cs.CoreV1().PersistentVolumeClaims(k.cfg.Namespace).Create(ctx, pvc, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return apiErr("create workspace claim "+pvc.Name, err)
	}
	_, err = k.cs.NetworkingV1().NetworkPolicies(k.cfg.Namespace).Create(ctx, runPolicy(run), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return apiErr("create network policy "+policyName(run), err)
	}
	return nil
}

// runPolicy isolates the pods of run's workspace: ingress only from pods of
// the same run and workspace; egress nowhere for pods labelled with
// labelNetwork=none (all pods of a run with sandbox.NetworkNone).
func runPolicy(run *sandbox.RunSpec) *networkingv1.NetworkPolicy {
	sameRun := metav1.LabelSelector{MatchLabels: workspaceLabels(run)}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: objectMeta(policyName(run), run, nil),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: sameRun,
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: &sameRun}},
			}},
		},
	}
}

// noNetworkPolicy denies all traffic of the run's pods labelled
// labelNetwork=none. Policies add up, so this one wins for those pods.
func noNetworkPolicy(run *sandbox.RunSpec) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{
		ObjectMeta: objectMeta(policyName(run)+"-none", run, nil),
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: workspaceLabels(run, labelNetwork, "none")},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	return p
}

// workspaceLabels selects the pods of run's workspace (by run only when
// Workspace is ""), plus extra key/value pairs.
func workspaceLabels(run *sandbox.RunSpec, extra ...string) map[string]string {
	m := map[string]string{sandbox.LabelRun: run.ID}
	if run.Workspace != "" {
		m[sandbox.LabelWorkspace] = run.Workspace
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// ensureNoNetworkPolicy creates noNetworkPolicy(run) once a pod needs it.
func (k *Kubernetes) ensureNoNetworkPolicy(ctx context.Context, run *sandbox.RunSpec) error {
	_, err := k.cs.NetworkingV1().NetworkPolicies(k.cfg.Namespace).Create(ctx, noNetworkPolicy(run), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return apiErr("create network policy "+policyName(run)+"-none", err)
	}
	return nil
}

// DestroyRun removes every pod (at once, without grace: the runner stopped
// the steps it cared about), Secret, NetworkPolicy and the workspace claim
// of the run's workspace; the run's other workspaces stay (objects without
// sandbox.LabelWorkspace belong to workspace ""). Missing objects are not errors, so it is idempotent and safe
// after a SetupRun that failed half-way; the failures of the removals that
// did fail are joined.
func (k *Kubernetes) DestroyRun(ctx context.Context, run *sandbox.RunSpec) error {
	if err := checkRun(run); err != nil {
		return err
	}
	k.forgetWorkspace(run)
	sel := sandbox.LabelManaged + "=true," + sandbox.LabelRun + "=" + run.ID
	if run.Instance != "" {
		sel += "," + sandbox.LabelInstance + "=" + labelValue(run.Instance)
	}
	if run.Workspace != "" {
		sel += "," + sandbox.LabelWorkspace + "=" + run.Workspace
	} else {
		sel += ",!" + sandbox.LabelWorkspace
	}
	_, err := k.removeSelected(ctx, sel, func(string) bool { return false })
	// By name too: a claim or policy created without labels by someone
	// else's retry is still this run's.
	errs := []error{err}
	errs = append(errs, k.deleteObject(ctx, kindClaim, claimName(run)))
	errs = append(errs, k.deleteObject(ctx, kindPolicy, policyName(run)))
	errs = append(errs, k.deleteObject(ctx, kindPolicy, policyName(run)+"-none"))
	return errors.Join(errs...)
}

// Sweep removes every pod, Secret, NetworkPolicy and claim labelled with
// instance whose run id keep does not keep, pods first so claims are no
// longer in use when they go. It returns the sorted, distinct run ids it
// removed objects of (also when some removals failed; their errors are
// joined). instance must not be empty.
func (k *Kubernetes) Sweep(ctx context.Context, instance string, keep func(runID string) bool) ([]string, error) {
	if instance == "" {
		return nil, errors.New("kubernetes: Sweep needs an instance id")
	}
	removed, err := k.removeSelected(ctx, instanceSelector(instance, ""), func(runID string) bool {
		if keep(runID) {
			return true
		}
		k.forgetRun(runID)
		return false
	})
	ids := make([]string, 0, len(removed))
	for id := range removed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, err
}

// Object kinds removeSelected and deleteObject handle, in removal order.
const (
	kindPod    = "pod"
	kindSecret = "secret"
	kindPolicy = "network policy"
	kindClaim  = "workspace claim"
)

// removeSelected deletes the objects of every kind matching selector whose
// run keep does not keep, and returns the run ids it deleted objects of.
func (k *Kubernetes) removeSelected(ctx context.Context, selector string, keep func(runID string) bool) (map[string]bool, error) {
	removed := map[string]bool{}
	var errs []error
	opts := metav1.ListOptions{LabelSelector: selector}
	for _, kind := range []string{kindPod, kindSecret, kindPolicy, kindClaim} {
		objs, err := k.list(ctx, kind, opts)
		if err != nil {
			errs = append(errs, apiErr("list "+kind+"s", err))
			if kind == kindPod {
				// Without the list the claim is likely still in use.
				return removed, errors.Join(errs...)
			}
			continue
		}
		for _, o := range objs {
			runID := o.Labels[sandbox.LabelRun]
			if keep(runID) {
				continue
			}
			if err := k.deleteObject(ctx, kind, o.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			removed[runID] = true
		}
	}
	return removed, errors.Join(errs...)
}

// list returns the metadata of the objects of kind matching opts.
func (k *Kubernetes) list(ctx context.Context, kind string, opts metav1.ListOptions) ([]metav1.ObjectMeta, error) {
	ns := k.cfg.Namespace
	var out []metav1.ObjectMeta
	switch kind {
	case kindPod:
		l, err := k.cs.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range l.Items {
			out = append(out, o.ObjectMeta)
		}
	case kindSecret:
		l, err := k.cs.CoreV1().Secrets(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range l.Items {
			out = append(out, o.ObjectMeta)
		}
	case kindPolicy:
		l, err := k.cs.NetworkingV1().NetworkPolicies(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range l.Items {
			out = append(out, o.ObjectMeta)
		}
	case kindClaim:
		l, err := k.cs.CoreV1().PersistentVolumeClaims(ns).List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, o := range l.Items {
			out = append(out, o.ObjectMeta)
		}
	default:
		return nil, fmt.Errorf("unknown kind %q", kind)
	}
	return out, nil
}

// deleteObject deletes one object; pods without grace (their containers
// are killed at once). A missing object is not an error.
func (k *Kubernetes) deleteObject(ctx context.Context, kind, name string) error {
	ns := k.cfg.Namespace
	var err error
	switch kind {
	case kindPod:
		err = k.cs.CoreV1().Pods(ns).Delete(ctx, name, *metav1.NewDeleteOptions(0))
	case kindSecret:
		err = k.cs.CoreV1().Secrets(ns).Delete(ctx, name, metav1.DeleteOptions{})
	case kindPolicy:
		err = k.cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, name, metav1.DeleteOptions{})
	case kindClaim:
		err = k.cs.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, name, metav1.DeleteOptions{})
	default:
		return fmt.Errorf("kubernetes: unknown kind %q", kind)
	}
	if err == nil || apierrors.IsNotFound(err) {
		return nil
	}
	return apiErr("delete "+kind+" "+name, err)
}
