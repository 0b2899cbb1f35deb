// Package kubernetes implements sandbox.Backend on a Kubernetes cluster
// (API 1.28 or newer) through client-go: every step is a pod, a run's
// workspace a PersistentVolumeClaim, the step's environment a Secret. All
// objects live in one namespace, carry the sandbox labels (values
// sanitised to label syntax; raw values in annotations) and have names
// derived from the run id and workspace, so destroy calls are idempotent
// and a restarted server finds and sweeps what an earlier one left. <key> is
// the run id, or <run>-<workspace> when sandbox.RunSpec.Workspace is set
// (a long workspace is cut and ends in a hash, so every name stays within
// 63 characters); objects of a workspace carry sandbox.LabelWorkspace:
//
//	kod-<key>-ws          PersistentVolumeClaim mounted at sandbox.WorkspacePath
//	kod-<key>-load        short-lived pod receiving the workspace tar on stdin
//	kod-<run>-<index>     pod of step <index> (restartPolicy Never; indexes are unique per run)
//	kod-<run>-<index>-env Secret holding the step's environment
//	kod-<key>             NetworkPolicy isolating the workspace's pods
//
// The first pod of a workspace is placed by the scheduler; every later pod
// of that workspace is pinned to the same node (required node affinity on
// metadata.name), so a ReadWriteOnce volume never has to move between nodes
// and different runs still spread over the cluster.
package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kod-forge/kod/sandbox"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultNamespace       = "kod"
	DefaultStopGrace       = 10 * time.Second
	DefaultPullTimeout     = 5 * time.Minute
	DefaultScheduleTimeout = 10 * time.Minute
	DefaultNodeLostTimeout = 40 * time.Second
	DefaultConfigTimeout   = time.Minute
	DefaultMaxStepDuration = 24 * time.Hour
	DefaultWorkspaceSize   = 1 << 30
)

// cleanupTimeout bounds teardown that runs on a context detached from the
// caller's (removal after a failed start, loader removal).
const cleanupTimeout = 30 * time.Second

// Config configures the Kubernetes backend.
type Config struct {
	// Namespace holds every object kod creates; "" means DefaultNamespace.
	Namespace string
	// StorageClass of workspace claims; "" means the cluster's default class.
	StorageClass string
	// WorkspaceSize is the storage request of a workspace claim, bytes;
	// 0 means DefaultWorkspaceSize (1 GiB).
	WorkspaceSize int64
	// NodeSelector restricts every pod to nodes with these labels.
	NodeSelector map[string]string
	// StopGrace is the termination grace of step pods (SIGTERM, then
	// SIGKILL after it); 0 means DefaultStopGrace. Kubernetes fixes a pod's
	// grace when it is created, so StopStep honours another grace only by
	// deleting the pod (its last output may then be lost).
	StopGrace time.Duration
	// PullTimeout is how long a step pod may fail to pull its image
	// (ErrImagePull, ImagePullBackOff) before the step fails; 0 means
	// DefaultPullTimeout. Errors that cannot heal (InvalidImageName,
	// ErrImageNeverPull) fail the step at once.
	PullTimeout time.Duration
	// ConfigTimeout is how long a step pod's container may stay
	// CreateContainerConfigError before the step fails; 0 means
	// DefaultConfigTimeout. The kubelet retries it: the usual cause is the
	// step's own Secret not yet in the kubelet's secret cache ("failed to
	// sync secret cache"), which heals within seconds.
	ConfigTimeout time.Duration
	// ScheduleTimeout is how long a pod may stay unschedulable before the
	// step fails with the scheduler's reason; 0 means DefaultScheduleTimeout.
	ScheduleTimeout time.Duration
	// NodeLostTimeout is how long a running step's pod may be reported not
	// ready (its node stopped reporting) before the step fails as lost;
	// 0 means DefaultNodeLostTimeout.
	NodeLostTimeout time.Duration
	// MaxStepDuration is the activeDeadlineSeconds backstop of a step pod
	// whose context has no deadline, so a pod outlives a crashed server by at
	// most this long; 0 means DefaultMaxStepDuration.
	MaxStepDuration time.Duration
	// CapDrop lists the capabilities removed from every step container;
	// nil means DefaultCapDrop().
	CapDrop []string
	// AllowNewPrivileges turns allowPrivilegeEscalation on. Off by default.
	AllowNewPrivileges bool
	// RuntimeClass is the RuntimeClass of step pods (e.g. "gvisor"); ""
	// means the cluster's default runtime.
	RuntimeClass string
}

// DefaultCapDrop returns the capabilities dropped from step containers
// unless Config.CapDrop says otherwise: the same set the Docker backend
// drops, so a workflow behaves alike on both.
func DefaultCapDrop() []string {
	return []string{"AUDIT_WRITE", "MKNOD", "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETPCAP", "SYS_CHROOT"}
}

// Kubernetes is a sandbox.Backend backed by a Kubernetes cluster. It is
// safe for concurrent use. Per started step it keeps the goroutines that
// watch the pod and follow its log; DestroyStep, DestroyRun, Sweep and Close
// end them.
type Kubernetes struct {
	cs  kubernetes.Interface
	cfg Config
	log *slog.Logger

	// attach streams stdin into a container of a running pod; openLog opens
	// a pod's log stream. Tests replace both (the fake clientset has
	// neither).
	attach  func(ctx context.Context, pod, container string, stdin io.Reader) error
	openLog func(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
	// tick is how often a waiting step re-evaluates its timeouts.
	tick time.Duration

	mu    sync.Mutex
	steps map[string]*stepState // key: stepKey(run id, index); nil while starting
	pins  map[string]*pin       // key: wsKey(run)
	// starting holds the workspace of each steps entry that is nil (a
	// StartStep in progress), so DestroyRun of that workspace cancels it.
	starting map[string]string
	closed   bool
}

// RESTConfig returns the client configuration of a cluster: the kubeconfig
// file at path if not "", else the in-cluster service account, else
// ~/.kube/config. Errors name what was tried.
func RESTConfig(path string) (*rest.Config, error) {
	if path != "" {
		c, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: kubeconfig %s: %w", path, err)
		}
		return c, nil
	}
	c, inErr := rest.InClusterConfig()
	if inErr == nil {
		return c, nil
	}
	home := clientcmd.RecommendedHomeFile
	if _, err := os.Stat(home); err != nil {
		return nil, fmt.Errorf("kubernetes: no kubeconfig given (KOD_KUBECONFIG), not in a cluster (%v), and no %s", inErr, filepath.Clean(home))
	}
	c, err := clientcmd.BuildConfigFromFlags("", home)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: kubeconfig %s: %w", home, err)
	}
	return c, nil
}

// New returns the backend for the cluster rc describes, without contacting
// it (see Check). log may be nil. It fails only on an invalid Config or
// client configuration.
func New(rc *rest.Config, cfg Config, log *slog.Logger) (*Kubernetes, error) {
	rc = rest.CopyConfig(rc)
	if rc.UserAgent == "" {
		rc.UserAgent = "kod"
	}
	// Steps are many small requests; client-go's default of 5 QPS would
	// queue them behind each other.
	if rc.QPS == 0 {
		rc.QPS, rc.Burst = 50, 100
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	k, err := NewForClient(cs, cfg, log)
	if err != nil {
		return nil, err
	}
	k.attach = func(ctx context.Context, pod, container string, stdin io.Reader) error {
		return attachStdin(ctx, rc, cs, k.cfg.Namespace, pod, container, stdin)
	}
	return k, nil
}

// errNoREST is attach's error on a backend made by NewForClient.
var errNoREST = errors.New("kubernetes: attaching needs a REST configuration (use New)")

// NewForClient is New over an existing clientset (e.g. client-go's fake).
// Attaching to pods (LoadWorkspace) needs New's REST configuration; with
// NewForClient it fails unless a test supplies it.
func NewForClient(cs kubernetes.Interface, cfg Config, log *slog.Logger) (*Kubernetes, error) {
	for name, d := range map[string]time.Duration{
		"StopGrace": cfg.StopGrace, "PullTimeout": cfg.PullTimeout, "ScheduleTimeout": cfg.ScheduleTimeout, "ConfigTimeout": cfg.ConfigTimeout,
		"NodeLostTimeout": cfg.NodeLostTimeout, "MaxStepDuration": cfg.MaxStepDuration,
	} {
		if d < 0 {
			return nil, fmt.Errorf("kubernetes: Config.%s must not be negative", name)
		}
	}
	if cfg.WorkspaceSize < 0 {
		return nil, errors.New("kubernetes: Config.WorkspaceSize must not be negative")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if errs := validation.IsDNS1123Label(cfg.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("kubernetes: namespace %q: %s", cfg.Namespace, errs[0])
	}
	for k, v := range cfg.NodeSelector {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return nil, fmt.Errorf("kubernetes: node selector key %q: %s", k, errs[0])
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return nil, fmt.Errorf("kubernetes: node selector value %q: %s", v, errs[0])
		}
	}
	setDefault(&cfg.StopGrace, DefaultStopGrace)
	setDefault(&cfg.PullTimeout, DefaultPullTimeout)
	setDefault(&cfg.ScheduleTimeout, DefaultScheduleTimeout)
	setDefault(&cfg.ConfigTimeout, DefaultConfigTimeout)
	setDefault(&cfg.NodeLostTimeout, DefaultNodeLostTimeout)
	setDefault(&cfg.MaxStepDuration, DefaultMaxStepDuration)
	if cfg.WorkspaceSize == 0 {
		cfg.WorkspaceSize = DefaultWorkspaceSize
	}
	if cfg.CapDrop == nil {
		cfg.CapDrop = DefaultCapDrop()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &Kubernetes{
		cs:    cs,
		cfg:   cfg,
		log:   log.With("component", "sandbox/kubernetes"),
		tick:  time.Second,
		steps: make(map[string]*stepState),
		pins:  make(map[string]*pin),

		starting: make(map[string]string),
	}
	k.attach = func(context.Context, string, string, io.Reader) error { return errNoREST }
	k.openLog = func(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
		return cs.CoreV1().Pods(k.cfg.Namespace).GetLogs(pod, opts).Stream(ctx)
	}
	return k, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Namespace returns the namespace the backend works in.
func (k *Kubernetes) Namespace() string { return k.cfg.Namespace }

// Clientset returns the client the backend uses (for checks and tests).
func (k *Kubernetes) Clientset() kubernetes.Interface { return k.cs }

// Close stops following steps (their pods keep running; DestroyRun or
// Sweep removes them) and waits for the backend's goroutines. Calls after
// the first return nil.
func (k *Kubernetes) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	steps := k.steps
	k.steps = make(map[string]*stepState)
	k.mu.Unlock()
	for _, st := range steps {
		if st != nil {
			st.stop()
		}
	}
	return nil
}

// apiErr adds the operation to err and marks failures to reach the API
// server with sandbox.ErrUnavailable.
func apiErr(op string, err error) error {
	if isUnreachable(err) {
		return fmt.Errorf("kubernetes: %s: %w: %w", op, sandbox.ErrUnavailable, err)
	}
	return fmt.Errorf("kubernetes: %s: %w", op, err)
}

// Object names. Run ids are [a-z0-9]+ of at most 40 characters and
// workspaces [a-z0-9-] with an alphanumeric at both ends (checkRun), so
// names of different runs, workspaces and kinds cannot collide and are
// valid DNS labels.
func claimName(run *sandbox.RunSpec) string  { return "kod-" + wsKey(run) + "-ws" }
func loaderName(run *sandbox.RunSpec) string { return "kod-" + wsKey(run) + "-load" }
func policyName(run *sandbox.RunSpec) string { return "kod-" + wsKey(run) }
func podName(runID string, index int) string { return "kod-" + runID + "-" + strconv.Itoa(index) }
func envName(runID string, index int) string { return podName(runID, index) + "-env" }
func stepKey(runID string, index int) string { return runID + "/" + strconv.Itoa(index) }

// maxKeyLen keeps "kod-<key>-load" (the longest name of a workspace)
// within 63 characters.
const maxKeyLen = 63 - len("kod-") - len("-load")

// wsKey is the run id, or <run>-<workspace>; a workspace too long for
// maxKeyLen keeps its start and ends in 8 hex digits of its hash.
func wsKey(run *sandbox.RunSpec) string {
	if run.Workspace == "" {
		return run.ID
	}
	ws := run.Workspace
	if avail := maxKeyLen - len(run.ID) - 1; len(ws) > avail {
		sum := sha256.Sum256([]byte(ws))
		ws = strings.TrimRight(ws[:avail-9], "-") + "-" + hex.EncodeToString(sum[:4])
	}
	return run.ID + "-" + ws
}

// checkRun rejects run specs that would give unsafe or ambiguous names.
func checkRun(run *sandbox.RunSpec) error {
	if run == nil {
		return errors.New("kubernetes: nil RunSpec")
	}
	if run.ID == "" {
		return errors.New("kubernetes: empty run id")
	}
	if len(run.ID) > 40 {
		return fmt.Errorf("kubernetes: run id %q longer than 40 characters", run.ID)
	}
	for _, c := range run.ID {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("kubernetes: run id %q: only [a-z0-9] allowed", run.ID)
		}
	}
	if err := sandbox.CheckWorkspace(run.Workspace); err != nil {
		return fmt.Errorf("kubernetes: run %s: %w", run.ID, err)
	}
	if run.Network != sandbox.NetworkBridge && run.Network != sandbox.NetworkNone {
		return fmt.Errorf("kubernetes: run %s: unknown network mode %q", run.ID, run.Network)
	}
	return nil
}

// checkStep is checkRun plus a usable step.
func checkStep(run *sandbox.RunSpec, step *sandbox.StepSpec) error {
	if err := checkRun(run); err != nil {
		return err
	}
	if step == nil || step.Index < 0 {
		return errors.New("kubernetes: need a StepSpec with Index >= 0")
	}
	return nil
}

// cleanupContext returns a context for teardown that survives the
// cancellation of ctx but not forever.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

var _ sandbox.Backend = (*Kubernetes)(nil)
