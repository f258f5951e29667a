package live

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/migrate"
	"github.com/meshcd/meshcd/reconciler"
)

// Kinds are the kinds Read lists.
var Kinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Namespace"},
	{Version: "v1", Kind: "Service"},
	{Version: "v1", Kind: "ServiceAccount"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"},
	{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"},
	{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"},
	{Group: "networking.istio.io", Version: "v1", Kind: "Gateway"},
	{Group: "networking.istio.io", Version: "v1", Kind: "ServiceEntry"},
	{Group: "networking.istio.io", Version: "v1", Kind: "Sidecar"},
	{Group: "networking.istio.io", Version: "v1alpha3", Kind: "EnvoyFilter"},
	{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"},
	{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"},
	{Group: "security.istio.io", Version: "v1", Kind: "RequestAuthentication"},
	{Group: "extensions.istio.io", Version: "v1alpha1", Kind: "WasmPlugin"},
	{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"},
}

// skipped are Kubernetes' own namespaces.
var skipped = map[string]bool{"kube-system": true, "kube-public": true, "kube-node-lease": true}

// Read lists Kinds from the cluster and writes them under dir, as
// NAMESPACE/KIND.yaml (cluster-scoped objects under _cluster), without
// the fields the server writes. dir must not exist or be empty.
func Read(ctx context.Context, c client.Reader, dir string) error {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("directory %s is not empty: name a new or empty directory for what the cluster holds", dir)
	}
	objs, err := reconciler.ListKinds(ctx, c, Kinds)
	if err != nil {
		return err
	}
	files := map[string][]*unstructured.Unstructured{}
	for _, o := range objs {
		ns := o.GetNamespace()
		if skipped[ns] || o.GetKind() == "Namespace" && skipped[o.GetName()] {
			continue
		}
		if ns == "" {
			ns = "_cluster"
		}
		path := filepath.Join(ns, strings.ToLower(o.GetKind())+".yaml")
		files[path] = append(files[path], migrate.Clean(o))
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		var b bytes.Buffer
		objs := files[p]
		sort.Slice(objs, func(i, j int) bool { return objs[i].GetName() < objs[j].GetName() })
		for i, o := range objs {
			if i > 0 {
				b.WriteString("---\n")
			}
			out, err := yaml.Marshal(o.Object)
			if err != nil {
				return fmt.Errorf("%s %s/%s cannot be written: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
			b.Write(out)
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, p), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
