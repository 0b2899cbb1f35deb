package kubernetes

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kod-forge/kod/sandbox"
)

// stepContainer is the name of the one container of a step pod.
const stepContainer = "step"

// maxEnvBytes bounds a step's environment: a Secret holds at most 1 MiB.
const maxEnvBytes = 1<<20 - 4096

// secretKeyRE is the syntax of a Secret's data keys.
var secretKeyRE = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// stepEnv splits step.Env ("NAME=value", later entries winning) into the
// data of the step's Secret and the pod's env entries that reference it, so
// no value (secrets included) appears in the pod spec. Names that are not
// valid Secret keys are stored under "env-<n>".
func stepEnv(secret string, env []string) (map[string][]byte, []corev1.EnvVar, error) {
	last := map[string]int{}
	names := []string{}
	values := map[string]string{}
	for _, e := range env {
		name, value, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			return nil, nil, &sandbox.StepError{Msg: fmt.Sprintf("invalid environment entry %q: want NAME=value", strings.SplitN(e, "=", 2)[0])}
		}
		if _, seen := last[name]; !seen {
			names = append(names, name)
		}
		last[name] = len(names) - 1
		values[name] = value
	}
	data := make(map[string][]byte, len(names))
	vars := make([]corev1.EnvVar, 0, len(names))
	size := 0
	for i, name := range names {
		key := name
		if !secretKeyRE.MatchString(key) {
			key = "env-" + strconv.Itoa(i)
		}
		data[key] = []byte(values[name])
		size += len(key) + len(values[name])
		vars = append(vars, corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key},
		}})
	}
	if size > maxEnvBytes {
		return nil, nil, &sandbox.StepError{Msg: fmt.Sprintf("the step's environment is %d bytes; at most %d fit in a Kubernetes Secret", size, maxEnvBytes)}
	}
	return data, vars, nil
}

// pullPolicy maps a sandbox pull policy onto Kubernetes'.
func pullPolicy(p sandbox.PullPolicy) (corev1.PullPolicy, error) {
	switch p {
	case "", sandbox.PullIfNotPresent:
		return corev1.PullIfNotPresent, nil
	case sandbox.PullAlways:
		return corev1.PullAlways, nil
	case sandbox.PullNever:
		return corev1.PullNever, nil
	}
	return "", &sandbox.StepError{Msg: fmt.Sprintf("unknown pull policy %q", p)}
}

// resources sets requests equal to limits (Guaranteed QoS for the memory
// and CPU a step asks for). Kubernetes has no per-pod PIDs limit: the
// kubelet's podPidsLimit applies to every pod of a node.
func resources(l sandbox.Limits) corev1.ResourceRequirements {
	rl := corev1.ResourceList{}
	if l.MemoryBytes > 0 {
		rl[corev1.ResourceMemory] = *resource.NewQuantity(l.MemoryBytes, resource.BinarySI)
	}
	if l.NanoCPUs > 0 {
		milli := max(1, int64(math.Ceil(float64(l.NanoCPUs)/1e6)))
		rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(milli, resource.DecimalSI)
	}
	if len(rl) == 0 {
		return corev1.ResourceRequirements{}
	}
	return corev1.ResourceRequirements{Limits: rl, Requests: rl.DeepCopy()}
}

// graceSeconds rounds a grace up to whole seconds, at least 1.
func graceSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}

// deadlineSeconds is the activeDeadlineSeconds backstop of a pod: ctx's
// deadline plus the stop grace and a minute, or Config.MaxStepDuration.
func (k *Kubernetes) deadlineSeconds(ctx context.Context) int64 {
	d := k.cfg.MaxStepDuration
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)+k.cfg.StopGrace+time.Minute)
	}
	return max(60, int64(math.Ceil(d.Seconds())))
}

// podSpec is the hardened spec shared by step and loader pods: the
// workspace claim at sandbox.WorkspacePath, no service-account token, no
// host namespaces, the pod's processes in one PID namespace (so the step's
// shell is not PID 1 and SIGTERM ends it), restartPolicy Never, the
// configured node selector and, once known, the workspace's node.
func (k *Kubernetes) podSpec(run *sandbox.RunSpec, node string, c corev1.Container) corev1.PodSpec {
	no, yes := false, true
	escalate := k.cfg.AllowNewPrivileges
	caps := make([]corev1.Capability, 0, len(k.cfg.CapDrop))
	for _, c := range k.cfg.CapDrop {
		caps = append(caps, corev1.Capability(c))
	}
	c.SecurityContext = &corev1.SecurityContext{
		Privileged:               &no,
		AllowPrivilegeEscalation: &escalate,
		Capabilities:             &corev1.Capabilities{Drop: caps},
	}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "workspace", MountPath: sandbox.WorkspacePath}}
	c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
	grace := graceSeconds(k.cfg.StopGrace)
	spec := corev1.PodSpec{
		RestartPolicy:                 corev1.RestartPolicyNever,
		AutomountServiceAccountToken:  &no,
		EnableServiceLinks:            &no,
		ShareProcessNamespace:         &yes,
		TerminationGracePeriodSeconds: &grace,
		NodeSelector:                  k.cfg.NodeSelector,
		SecurityContext: &corev1.PodSecurityContext{
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{c},
		Volumes: []corev1.Volume{{
			Name: "workspace",
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: claimName(run),
			}},
		}},
	}
	if k.cfg.RuntimeClass != "" {
		rc := k.cfg.RuntimeClass
		spec.RuntimeClassName = &rc
	}
	if node != "" {
		spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchFields: []corev1.NodeSelectorRequirement{{
						Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node},
					}},
				}},
			},
		}}
	}
	return spec
}

// stepPod returns the pod of step, its environment in Secret envSecret.
func (k *Kubernetes) stepPod(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, node string, env []corev1.EnvVar) (*corev1.Pod, error) {
	policy, err := pullPolicy(step.Pull)
	if err != nil {
		return nil, err
	}
	workDir := step.WorkDir
	if workDir == "" {
		workDir = sandbox.WorkspacePath
	}
	c := corev1.Container{
		Name:            stepContainer,
		Image:           step.Image,
		ImagePullPolicy: policy,
		Command:         step.Command,
		Env:             env,
		WorkingDir:      workDir,
		Resources:       resources(step.Limits),
		// An empty pipe, closed by StartStep's attach (see closeStdin).
		Stdin:     true,
		StdinOnce: true,
	}
	meta := stepMeta(podName(run.ID, step.Index), run, step, "step")
	if run.Network == sandbox.NetworkNone || step.NoNetwork {
		meta.Labels[labelNetwork] = "none"
	}
	spec := k.podSpec(run, node, c)
	deadline := k.deadlineSeconds(ctx)
	spec.ActiveDeadlineSeconds = &deadline
	return &corev1.Pod{ObjectMeta: meta, Spec: spec}, nil
}
