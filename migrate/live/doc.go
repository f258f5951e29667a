// Package live reads a sidecar-mode configuration from a cluster into a
// directory that migrate.Migrate reads, one file per namespace and kind,
// so that the report's file:line points at what the cluster held.
//
// It only lists: it never writes to the cluster. It reads the
// application's kinds (Namespaces, Services, ServiceAccounts, workloads)
// and every Istio and Gateway API kind the move looks at, in every
// namespace but Kubernetes' own; a kind the cluster does not serve is
// passed over.
package live
