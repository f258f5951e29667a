// Package clustertest gives a test package one local cluster, started in
// TestMain, and each test a namespace of its own.
//
// When the binaries are missing, tests that ask for the cluster skip with a
// message naming `make tools`; with MESHCD_REQUIRE_CLUSTER=1 (as `make test`
// sets it) the package fails instead, so CI never skips them.
package clustertest
