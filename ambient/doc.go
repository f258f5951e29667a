// Package ambient names the labels, annotations, kinds and status conditions
// of Istio ambient mode and the Gateway API that meshcd reads and writes, and
// the ownership labels meshcd puts on what it renders.
//
// It holds names and small pure helpers only; it never renders, validates or
// talks to a cluster.
package ambient
