// Package meshspec owns meshcd's spec API, meshcd.dev/v1alpha1: the kinds
// MeshNamespace, MeshService and DataplaneRollout, their strict loading with
// file:line:column errors, their defaults, and the JSON Schema generated from
// them for editors. Files are YAML streams (Load) or JSON values (LoadJSON);
// a List, or a kind ending in List with items, is unpacked, and each item
// is checked and placed like a document of its own.
//
// Loading never guesses: an unknown field, a value of the wrong type or out of
// range is an error that names the file, the position and the field path, and
// says what to write instead. Documents of other APIs are passed through as
// plain manifests.
//
// meshspec never renders objects and never talks to a cluster.
package meshspec

//go:generate go run ../hack/schemagen -src . -out schema
