// Package plan compares two renders of a spec — the base and the head of a
// pull request — and reports, first, who gains and who loses access (the
// access matrices of package access compared request by request, one line
// per change such as "+ shop/web → shop/orders: DELETE /api/* (waypoint)"),
// then the objects added, changed and removed, with a YAML diff of each,
// and the findings the head introduces and fixes, with those of the change
// itself (rules.CheckChange: what the apply order does while it runs). It
// renders the report as Markdown fit for a pull-request comment, as text
// and as JSON.
//
// It never talks to a cluster; a live diff, when wanted, is computed by the
// reconciler and attached.
package plan
