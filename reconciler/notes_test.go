package reconciler_test

import (
	"strings"
	"testing"

	"github.com/meshcd/meshcd/reconciler"
)

func TestReconcile_AppliesJSONAndListItemsInTheRenderNamespaceAndReportsSkippedFiles(t *testing.T) {
	// newEnv names the instance after the test's namespace.
	e := newEnv(t, func(o *reconciler.Options) { o.Render.Namespace = o.Name })
	e.spec(map[string]string{
		"settings.JSON": `{"apiVersion": "v1", "kind": "ConfigMapList", "items": [
  {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-json"}, "data": {"a": "1"}}]}`,
		"Plain.YML": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-yml}\n",
		"README.md": "# mesh\n",
	})
	res := e.reconcile()
	for _, name := range []string{"from-json", "from-yml"} {
		if _, err := e.get("v1", "ConfigMap", e.ns, name); err != nil {
			t.Errorf("ConfigMap %s/%s was not applied: %v", e.ns, name, err)
		}
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Path != "README.md" || !strings.HasPrefix(res.Skipped[0].Reason, "not a manifest") {
		t.Errorf("skipped: got %v, want README.md as not a manifest", res.Skipped)
	}
}
