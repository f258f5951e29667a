// Package faults is meshcd's fault-injection and hostile-input suite. Its
// tests run on the local control plane (real kube-apiserver, etcd, kwok and
// istiod): meshcd killed at named points of a reconcile, the apiserver
// restarted mid-apply, bad sources, refused deletes, fights with another
// field manager, throttling, hostile repositories and a search for a
// planted secret in everything meshcd prints.
//
// Every test records what it injected and what it counted afterwards:
// converged, objects lost (in the spec, absent), orphans (owned by meshcd,
// in neither the spec nor the inventory) and unintended deletions. The
// short form runs in make test; MESHCD_FAULTS=long runs the long form, and
// MESHCD_FAULTS_REPORT names a file to write the table to (make fault
// writes docs/reliability.md, whatever the outcome, with the digest of the
// suite's inputs that internal/repocheck checks). The run ends with one line:
//
//	faults: <N> injected, <N> converged, <N> failed, <N> lost, <N> orphaned, <N> unintended deletions, <N> secrets printed
package faults
