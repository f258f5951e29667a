// Package reconciler wires meshcd's stages — fetch, render, validate, apply,
// prune, health — into one reconcile. Each stage lives in its own
// sub-package; this package only orders them and records the outcome.
//
// It never renders objects itself: that is the renderer's job.
package reconciler
