package reconciler

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/ambient"
	"github.com/meshcd/meshcd/reconciler/health"
	"github.com/meshcd/meshcd/reconciler/proof"
)

// proofFetchTimeout bounds one read of istiod's xDS.
const proofFetchTimeout = 10 * time.Second

// proveAccess compares the access model of objs with the configuration
// istiod serves to ztunnel, when Options.IstiodXDS names istiod's plaintext
// xDS port; settle says how long to wait for istiod to catch up. A failed
// read is an unhealthy report, never a failed reconcile.
func (r *Reconciler) proveAccess(ctx context.Context, objs []*unstructured.Unstructured, settle proof.Settle) []health.Report {
	if r.opts.IstiodXDS == "" {
		return nil
	}
	src := proof.Source{Address: r.opts.IstiodXDS, ClusterID: "Kubernetes", Timeout: proofFetchTimeout}
	res, err := proof.Prove(ctx, objs, src, access.DefaultOptions(), settle)
	if err != nil {
		return []health.Report{{Object: proof.ReportObject, Message: err.Error()}}
	}
	return res.Reports()
}

// modelKinds are the kinds the access model reads.
var modelKinds = map[schema.GroupKind]bool{
	ambient.NamespaceGK: true, ambient.ServiceGK: true, ambient.GatewayGK: true,
	ambient.AuthorizationPolicyGK: true, ambient.PeerAuthenticationGK: true,
	{Kind: "ServiceAccount"}: true, {Kind: "Pod"}: true,
	{Group: "apps", Kind: "Deployment"}: true, {Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}: true, {Group: "apps", Kind: "ReplicaSet"}: true,
	{Group: "batch", Kind: "Job"}: true, {Group: "batch", Kind: "CronJob"}: true,
}

// liveModelObjects reads the live copies of the objects of stubs the access
// model reads; those gone are left out.
func (r *Reconciler) liveModelObjects(ctx context.Context, stubs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, s := range stubs {
		if !modelKinds[s.GroupVersionKind().GroupKind()] {
			continue
		}
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(s.GroupVersionKind())
		err := r.client.Get(ctx, client.ObjectKeyFromObject(s), live)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, err
		}
		out = append(out, live)
	}
	return out, nil
}
