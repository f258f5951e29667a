package proof

import (
	"context"
	"errors"
	"fmt"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
	"istio.io/istio/pkg/workloadapi"
	"istio.io/istio/pkg/workloadapi/security"
)

// The xDS types read (pilot/pkg/xds/v3/model.go: WorkloadAuthorizationType,
// AddressType, ListenerType).
const (
	authorizationType = "type.googleapis.com/istio.security.Authorization"
	addressType       = "type.googleapis.com/istio.workload.Address"
	listenerType      = "type.googleapis.com/envoy.config.listener.v3.Listener"
)

// Source is where istiod's plaintext xDS listens and how to present itself.
type Source struct {
	// Address is host:port of istiod's plaintext gRPC xDS (port 15010).
	Address string
	// ClusterID is istiod's cluster id, "Kubernetes" by default.
	ClusterID string
	// Timeout bounds one fetch.
	Timeout time.Duration
}

// ztunnelNode presents the stream as a ztunnel: istiod serves these types
// to ztunnel nodes (type~ip~pod.namespace~domain).
const ztunnelNode = "ztunnel~127.0.0.1~meshcd-proof.istio-system~istio-system.svc.cluster.local"

// Fetch reads every Authorization and Address istiod serves to ztunnel, on
// one Delta ADS stream with a wildcard subscription to each type: istiod's
// first response to a wildcard subscription holds every resource
// (pilot/pkg/xds/workload.go, GenerateDeltas).
func Fetch(ctx context.Context, src Source) (*Config, error) {
	var (
		policies  []*security.Authorization
		addresses []*workloadapi.Address
	)
	meta := map[string]any{"NAMESPACE": "istio-system", "SERVICE_ACCOUNT": "ztunnel"}
	err := subscribe(ctx, src, ztunnelNode, meta, []string{authorizationType, addressType}, func(typeURL string, r *discovery.Resource) error {
		switch typeURL {
		case authorizationType:
			p := &security.Authorization{}
			policies = append(policies, p)
			return r.GetResource().UnmarshalTo(p)
		case addressType:
			a := &workloadapi.Address{}
			addresses = append(addresses, a)
			return r.GetResource().UnmarshalTo(a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return NewConfig(policies, addresses), nil
}

// subscribe opens a Delta ADS stream as node, subscribes to every resource
// of each type and hands each resource of the first response of each type
// to handle.
func subscribe(ctx context.Context, src Source, nodeID string, meta map[string]any, types []string, handle func(typeURL string, r *discovery.Resource) error) error {
	ctx, cancel := context.WithTimeout(ctx, src.Timeout)
	defer cancel()
	conn, err := grpc.NewClient(src.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("istiod xDS %s: %w: pass host:port of istiod's plaintext xDS port", src.Address, err)
	}
	defer conn.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx, grpc.MaxCallRecvMsgSize(256<<20))
	if err != nil {
		return fetchError(src, err)
	}
	meta["CLUSTER_ID"] = src.ClusterID
	md, err := structpb.NewStruct(meta)
	if err != nil {
		return err
	}
	node := &core.Node{Id: nodeID, Metadata: md}
	for _, t := range types {
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: t, ResourceNamesSubscribe: []string{"*"}}); err != nil {
			return fetchError(src, err)
		}
	}
	received := map[string]bool{}
	for len(received) < len(types) {
		resp, err := stream.Recv()
		if err != nil {
			return fetchError(src, err)
		}
		received[resp.GetTypeUrl()] = true
		for _, r := range resp.GetResources() {
			if err := handle(resp.GetTypeUrl(), r); err != nil {
				return fmt.Errorf("istiod xDS %s sent %s %s that cannot be read: %w", src.Address, resp.GetTypeUrl(), r.GetName(), err)
			}
		}
	}
	return nil
}

func fetchError(src Source, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("istiod xDS %s did not answer within %s: check that it is istiod's plaintext xDS port (15010, reach it with kubectl port-forward): %w", src.Address, src.Timeout, err)
	}
	return fmt.Errorf("istiod xDS %s: %w: check that it is istiod's plaintext xDS port (15010, reach it with kubectl port-forward)", src.Address, err)
}
