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

// The xDS types ztunnel subscribes to (pilot/pkg/xds/v3/model.go,
// WorkloadAuthorizationType and AddressType).
const (
	authorizationType = "type.googleapis.com/istio.security.Authorization"
	addressType       = "type.googleapis.com/istio.workload.Address"
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

// nodeID presents the stream as a ztunnel: istiod serves these types to
// ztunnel nodes (type~ip~pod.namespace~domain).
const nodeID = "ztunnel~127.0.0.1~meshcd-proof.istio-system~istio-system.svc.cluster.local"

// Fetch reads every Authorization and Address istiod serves to ztunnel, on
// one Delta ADS stream with a wildcard subscription to each type: istiod's
// first response to a wildcard subscription holds every resource
// (pilot/pkg/xds/workload.go, GenerateDeltas).
func Fetch(ctx context.Context, src Source) (*Config, error) {
	ctx, cancel := context.WithTimeout(ctx, src.Timeout)
	defer cancel()
	conn, err := grpc.NewClient(src.Address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("istiod xDS %s: %w: pass host:port of istiod's plaintext xDS port", src.Address, err)
	}
	defer conn.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx, grpc.MaxCallRecvMsgSize(256<<20))
	if err != nil {
		return nil, fetchError(src, err)
	}
	meta, err := structpb.NewStruct(map[string]any{"NAMESPACE": "istio-system", "SERVICE_ACCOUNT": "ztunnel", "CLUSTER_ID": src.ClusterID})
	if err != nil {
		return nil, err
	}
	node := &core.Node{Id: nodeID, Metadata: meta}
	for _, t := range []string{authorizationType, addressType} {
		if err := stream.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: t, ResourceNamesSubscribe: []string{"*"}}); err != nil {
			return nil, fetchError(src, err)
		}
	}
	var (
		policies  []*security.Authorization
		addresses []*workloadapi.Address
		received  = map[string]bool{}
	)
	for len(received) < 2 {
		resp, err := stream.Recv()
		if err != nil {
			return nil, fetchError(src, err)
		}
		received[resp.GetTypeUrl()] = true
		for _, r := range resp.GetResources() {
			switch resp.GetTypeUrl() {
			case authorizationType:
				p := &security.Authorization{}
				if err := r.GetResource().UnmarshalTo(p); err != nil {
					return nil, fmt.Errorf("istiod xDS %s sent Authorization %s that cannot be read: %w", src.Address, r.GetName(), err)
				}
				policies = append(policies, p)
			case addressType:
				a := &workloadapi.Address{}
				if err := r.GetResource().UnmarshalTo(a); err != nil {
					return nil, fmt.Errorf("istiod xDS %s sent Address %s that cannot be read: %w", src.Address, r.GetName(), err)
				}
				addresses = append(addresses, a)
			}
		}
	}
	return NewConfig(policies, addresses), nil
}

func fetchError(src Source, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("istiod xDS %s did not answer within %s: check that it is istiod's plaintext xDS port (15010, reach it with kubectl port-forward): %w", src.Address, src.Timeout, err)
	}
	return fmt.Errorf("istiod xDS %s: %w: check that it is istiod's plaintext xDS port (15010, reach it with kubectl port-forward)", src.Address, err)
}
