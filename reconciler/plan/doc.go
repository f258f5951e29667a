// Package plan compares two renders of a spec — the base and the head of a
// pull request — and reports the objects added, changed and removed, with a
// YAML diff of each, and the findings the head introduces and fixes. It
// renders the report as Markdown fit for a pull-request comment, as text
// and as JSON.
//
// It never talks to a cluster; a live diff, when wanted, is computed by the
// reconciler and attached.
package plan
