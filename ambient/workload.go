package ambient

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// podTemplatePaths are where each workload kind keeps its pod template; a
// Pod is its own template (an empty path).
var podTemplatePaths = map[schema.GroupKind][]string{
	{Group: "apps", Kind: "Deployment"}:  {"spec", "template"},
	{Group: "apps", Kind: "StatefulSet"}: {"spec", "template"},
	{Group: "apps", Kind: "DaemonSet"}:   {"spec", "template"},
	{Group: "apps", Kind: "ReplicaSet"}:  {"spec", "template"},
	{Group: "batch", Kind: "Job"}:        {"spec", "template"},
	{Group: "batch", Kind: "CronJob"}:    {"spec", "jobTemplate", "spec", "template"},
	{Kind: "Pod"}:                        nil,
}

// PodTemplate returns the pod template of a workload (Deployment,
// StatefulSet, DaemonSet, ReplicaSet, Job, CronJob), the object itself for
// a Pod, and whether o is one of those kinds. A workload without a
// template gets an empty one.
func PodTemplate(o *unstructured.Unstructured) (map[string]any, bool) {
	path, ok := podTemplatePaths[o.GroupVersionKind().GroupKind()]
	if !ok {
		return nil, false
	}
	if len(path) == 0 {
		return o.Object, true
	}
	t, _, _ := unstructured.NestedFieldNoCopy(o.Object, path...)
	if m, isMap := t.(map[string]any); isMap {
		return m, true
	}
	return map[string]any{}, true
}
