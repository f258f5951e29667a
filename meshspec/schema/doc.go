// Package schema is the JSON Schema of meshcd's spec API, meshcd.dev/v1alpha1.
//
// Generate writes it from the Go types in meshspec: descriptions from their
// doc comments, enums, defaults and bounds from their +kubebuilder markers;
// hack/schemagen runs it through go generate. Editors read the generated
// files through a "# yaml-language-server: $schema=..." line.
//
// The generated files are embedded too, and Explain renders a kind or a
// field of them as a reference, in the manner of kubectl explain: it is
// what `meshcd explain` prints, and what meshcd's messages about unknown
// fields point to.
package schema
