package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kod-forge/kod/sandbox"
)

// Label and annotation keys of this backend, next to the sandbox labels.
const (
	labelRole     = "dev.kod.role"      // "step" or "workspace-loader"
	labelNetwork  = "dev.kod.network"   // "none" on pods of steps without network
	annotStepName = "dev.kod.step-name" // raw StepSpec.Name
	// annotRawPrefix + key holds the raw value of a label whose value had to
	// be sanitised.
	annotRawPrefix = "raw.dev.kod/"
)

// labelValue turns s into a valid label value (at most 63 characters of
// [A-Za-z0-9-_.], alphanumeric at both ends, or empty). Values that are
// already valid stay as they are; others keep their valid characters and,
// when anything was changed, end in a short hash of the raw value so that
// two different raw values do not collide. Repository and step names are
// free text, label values are not.
func labelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	sum := sha256.Sum256([]byte(s))
	suffix := hex.EncodeToString(sum[:4])
	v := b.String()
	if max := 63 - len(suffix) - 1; len(v) > max {
		v = v[:max]
	}
	v = strings.Trim(v, "-_.")
	if v == "" {
		return suffix
	}
	return v + "-" + suffix
}

// objectMeta returns the metadata of an object of run: the sandbox labels
// (managed, instance, run, workspace when set; they win over run.Labels of the same key) plus
// extra, every value made label-safe, with the raw value of each changed
// one in an annotation.
func objectMeta(name string, run *sandbox.RunSpec, extra map[string]string) metav1.ObjectMeta {
	raw := make(map[string]string, len(run.Labels)+len(extra)+3)
	maps.Copy(raw, run.Labels)
	maps.Copy(raw, extra)
	raw[sandbox.LabelManaged] = "true"
	raw[sandbox.LabelInstance] = run.Instance
	raw[sandbox.LabelRun] = run.ID
	delete(raw, sandbox.LabelWorkspace)
	if run.Workspace != "" {
		raw[sandbox.LabelWorkspace] = run.Workspace
	}
	labels := make(map[string]string, len(raw))
	var annotations map[string]string
	for k, v := range raw {
		if len(validation.IsQualifiedName(k)) > 0 {
			continue // not a usable label key; keep it as an annotation only
		}
		safe := labelValue(v)
		labels[k] = safe
		if safe != v {
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[annotRawPrefix+k] = v
		}
	}
	for k, v := range raw {
		if _, ok := labels[k]; !ok && len(validation.IsQualifiedName(annotRawPrefix+k)) == 0 {
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[annotRawPrefix+k] = v
		}
	}
	return metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}
}

// stepMeta is objectMeta for the objects of one step.
func stepMeta(name string, run *sandbox.RunSpec, step *sandbox.StepSpec, role string) metav1.ObjectMeta {
	m := objectMeta(name, run, map[string]string{
		sandbox.LabelStep: strconv.Itoa(step.Index),
		labelRole:         role,
	})
	if step.Name != "" {
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[annotStepName] = step.Name
	}
	return m
}

// instanceSelector selects every object of instance; with runID also only
// that run's.
func instanceSelector(instance, runID string) string {
	s := sandbox.LabelManaged + "=true," + sandbox.LabelInstance + "=" + labelValue(instance)
	if runID != "" {
		s += "," + sandbox.LabelRun + "=" + runID
	}
	return s
}
