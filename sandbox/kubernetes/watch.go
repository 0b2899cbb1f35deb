package kubernetes

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// resyncTicks is how many ticks a watch lasts before the pod is read again
// in full: insurance against events a broken watch lost.
const resyncTicks = 10

// watchPod calls eval with the pod called name each time it changes and at
// every tick (so timeouts are evaluated while nothing happens), and with nil
// once it does not exist, until eval returns true or ctx ends. A broken
// watch or a failed read is retried after a tick: the API server may be
// restarting.
func (k *Kubernetes) watchPod(ctx context.Context, name string, eval func(pod *corev1.Pod) bool) error {
	pods := k.cs.CoreV1().Pods(k.cfg.Namespace)
	ticker := time.NewTicker(k.tick)
	defer ticker.Stop()
	wait := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
			return nil
		}
	}
	var last *corev1.Pod
	for {
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			if eval(nil) {
				return nil
			}
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			k.log.Debug("reading a pod", "pod", name, "err", err)
			if last != nil && eval(last) { // timeouts still count
				return nil
			}
			if err := wait(); err != nil {
				return err
			}
			continue
		default:
			last = pod
			if eval(pod) {
				return nil
			}
		}
		rv := ""
		if last != nil {
			rv = last.ResourceVersion
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: rv,
		})
		if err != nil {
			if err := wait(); err != nil {
				return err
			}
			continue
		}
		done, err := k.drainWatch(ctx, w, name, ticker, &last, eval)
		w.Stop()
		if done || err != nil {
			return err
		}
	}
}

// drainWatch feeds the events of w to eval until eval is done (true), the
// watch breaks or has lasted resyncTicks ticks (false), or ctx ends.
func (k *Kubernetes) drainWatch(ctx context.Context, w watch.Interface, name string, ticker *time.Ticker, last **corev1.Pod, eval func(*corev1.Pod) bool) (bool, error) {
	for ticks := 0; ticks < resyncTicks; {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-ticker.C:
			ticks++
			if *last != nil && eval(*last) {
				return true, nil
			}
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				pod, ok := ev.Object.(*corev1.Pod)
				if !ok || pod.Name != name {
					continue
				}
				*last = pod
				if eval(pod) {
					return true, nil
				}
			case watch.Deleted:
				if pod, ok := ev.Object.(*corev1.Pod); ok && pod.Name != name {
					continue
				}
				if eval(nil) {
					return true, nil
				}
			case watch.Error:
				return false, nil // e.g. resource version too old: read again
			}
		}
	}
	return false, nil
}
