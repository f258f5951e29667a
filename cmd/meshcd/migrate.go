package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/migrate"
	"github.com/meshcd/meshcd/migrate/live"
)

func newMigrateCommand(stdout io.Writer) *cobra.Command {
	var (
		out    string
		isLive bool
		kube   kubeFlags
	)
	opts := migrate.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "migrate SOURCE -o DIR | migrate --live -o DIR",
		Short: "Plan the move of a sidecar-mode Istio configuration to ambient: a spec, a report and staged commits",
		Long: "migrate reads SOURCE, a directory of sidecar-mode Istio and Kubernetes YAML, and writes under DIR:\n" +
			"spec/, the meshcd spec repository that keeps its routing and access in ambient (plain YAML, with a comment\n" +
			"saying why, for what the spec cannot express); stages/NN-NAMESPACE-STEP/, the repository after each commit of\n" +
			"the move, namespace by namespace; and MIGRATION.md, what does not carry over and the access comparison.\n" +
			"The access model of SOURCE with sidecar semantics is compared with every stage as rendered.\n" +
			"With --live, SOURCE is read from the cluster (read-only: lists only) into DIR/source/, one file per namespace and kind.\n" +
			"Exit codes: 0 no difference in access and no error finding, 1 differences or findings (listed in the report), 2 bad input.",
		Example: "  meshcd migrate ./istio-config -o ./mesh-migration\n" +
			"  meshcd migrate --live --context prod -o ./mesh-migration   # read the sidecar config from the cluster\n" +
			"  less ./mesh-migration/MIGRATION.md",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("-o DIR is required: the directory to write the spec, the stages and the report to")
			}
			if isLive == (len(args) == 1) {
				return fmt.Errorf("name SOURCE, a directory of sidecar-mode YAML, or --live to read it from the cluster, not both")
			}
			source := ""
			if isLive {
				cl, err := kube.connect(cmd.Context())
				if err != nil {
					return err
				}
				source = filepath.Join(out, "source")
				if err := live.Read(cmd.Context(), cl.client, source); err != nil {
					return err
				}
			} else {
				source = args[0]
			}
			r, err := migrate.Migrate(source, opts)
			if err != nil {
				return err
			}
			if err := r.Write(out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote %s: %d stages, %d items that do not carry over, %d access differences (%d widen); report in %s/MIGRATION.md\n",
				out, len(r.Stages), len(r.Items), len(r.Access.Differences), r.Access.Widening(), out)
			if len(r.Access.Differences) > 0 || len(r.Access.Unexpected()) > 0 {
				return errNotClean
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "the directory to write to; it must be new or empty")
	f.StringVarP(&opts.Namespace, "namespace", "n", opts.Namespace, "the namespace of manifests that name none, as kubectl's --namespace")
	f.BoolVar(&isLive, "live", false, "read the sidecar-mode configuration from the cluster, read-only, instead of SOURCE")
	kube.register(cmd)
	return cmd
}
