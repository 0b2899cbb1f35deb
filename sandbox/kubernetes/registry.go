package kubernetes

import (
	"context"
	"time"

	"github.com/distribution/reference"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ImagePresent reports whether every node a step may run on (Ready, and
// matching Config.NodeSelector) lists ref among its images, so that no
// node would pull it (registry.Presence: the registry policy then need not
// be asked, and the step runs with pull policy never). It is false, without
// error, when kod may not list nodes (the Role in docs/kubernetes.md does
// not need it) or no node fits.
func (k *Kubernetes) ImagePresent(ctx context.Context, ref string) (bool, error) {
	want, err := normalImage(ref)
	if err != nil {
		return false, nil // the backend reports the invalid reference
	}
	nodes, err := k.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(k.cfg.NodeSelector).String()})
	if apierrors.IsForbidden(err) {
		return false, nil
	}
	if err != nil {
		return false, apiErr("list nodes", err)
	}
	found := 0
	for _, n := range nodes.Items {
		if n.Spec.Unschedulable || !nodeReady(n.Status.Conditions) {
			continue
		}
		has := false
		for _, img := range n.Status.Images {
			for _, name := range img.Names {
				if got, err := normalImage(name); err == nil && got == want {
					has = true
				}
			}
		}
		if !has {
			return false, nil
		}
		found++
	}
	return found > 0, nil
}

// normalImage is ref in the form nodes report: "docker.io/library/alpine:latest".
func normalImage(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", err
	}
	return reference.TagNameOnly(named).String(), nil
}

// timeNow is time.Now; a variable so tests can move the clock.
var timeNow = time.Now
