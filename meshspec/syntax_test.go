package meshspec

import (
	"bytes"
	"testing"
)

// TestLoad_YAMLSyntaxErrorsNameLineAndColumn checks that a malformed
// document is reported at the line and column of the character the parser
// could not accept, not at the line where the enclosing construct starts.
func TestLoad_YAMLSyntaxErrorsNameLineAndColumn(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{{
		name: "TabIndent",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: cfg", "data:", "  a: b", "\tc: d"),
		want: "t.yaml:7:1: malformed YAML: found a tab character that violates indentation",
	}, {
		name: "UnclosedFlowMap",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata: {name: broken", "data:", "  a: b"),
		want: "t.yaml:3:11: malformed YAML: did not find expected ',' or '}'; this { is not closed, or its entries miss a comma",
	}, {
		name: "UnclosedFlowMapAroundAClosedOne",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata: {name: cfg,", "  labels: {app: x}", "data:", "  a: b"),
		want: "t.yaml:3:11: malformed YAML: did not find expected ',' or '}'; this { is not closed, or its entries miss a comma",
	}, {
		name: "ListItemIndentedShort",
		data: lines("apiVersion: v1", "kind: List", "items:", "  - apiVersion: v1", "    kind: ConfigMap", "   metadata: {name: cfg}"),
		want: "t.yaml:6:4: malformed YAML: did not find expected '-' indicator",
	}, {
		name: "ListItemOutdented",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: cfg", "  finalizers:", "    - a", "    - b", "   - c"),
		want: "t.yaml:8:4: malformed YAML: did not find expected key",
	}, {
		name: "StrayColon",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: x", "  labels: app: x"),
		want: "t.yaml:5:14: malformed YAML: mapping values are not allowed in this context",
	}, {
		name: "UnclosedQuote",
		data: lines("apiVersion: v1", "kind: ConfigMap", "metadata:", `  name: "cfg`, "data: {}"),
		want: "t.yaml:4:9: malformed YAML: found unexpected end of stream",
	}, {
		name: "MissingCommaInFlowList",
		data: lines("apiVersion: v1", "kind: ConfigMap", `metadata: {name: cfg, finalizers: ["a" "b"]}`),
		want: "t.yaml:3:35: malformed YAML: did not find expected ',' or ']'; this [ is not closed, or its entries miss a comma",
	}, {
		name: "ThirdDocumentCountsTheLinesBefore",
		data: lines(nsHead, "  mtls: STRICT", "---", "apiVersion: v1", "kind: ConfigMap", "metadata: {name: a}", "---", "apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: b", "  labels: app: b"),
		want: "t.yaml:15:14: malformed YAML: mapping values are not allowed in this context",
	}, {
		name: "LargeFileDecodedInChunks",
		data: append(bytes.Repeat(lines("---", "apiVersion: v1", "kind: ConfigMap", "metadata: {name: padding}"), 4000),
			lines("---", "apiVersion: v1", "kind: ConfigMap", "metadata:", "\tname: x")...),
		want: "t.yaml:16005:1: malformed YAML: found character that cannot start any token",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("t.yaml", tc.data)
			if err == nil {
				t.Fatal("want an error, got none")
			}
			if err.Error() != tc.want {
				t.Errorf("got  %s\nwant %s", err, tc.want)
			}
		})
	}
}
