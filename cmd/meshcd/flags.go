package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/meshcd/meshcd/reconciler"
	"github.com/meshcd/meshcd/reconciler/admit"
)

// instanceFlags name the cluster and the meshcd instance: all that the
// commands reading or steering an instance's state (status, suspend,
// resume, rollout, allow-prune) take.
type instanceFlags struct {
	kube kubeFlags
	name string
	// istiodXDS is registered only by the commands that read health back
	// (registerProof).
	istiodXDS string
}

func (f *instanceFlags) register(cmd *cobra.Command) {
	f.kube.register(cmd)
	cmd.Flags().StringVar(&f.name, "name", reconciler.DefaultOptions().Name, "name of this meshcd instance; its inventory is meshcd-inventory-<name>")
}

// registerProof adds --istiod-xds, for the commands that read back what
// istiod made of the applied objects.
func (f *instanceFlags) registerProof(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.istiodXDS, "istiod-xds", "", "host:port of istiod's plaintext xDS port (15010, such as 127.0.0.1:15010 through kubectl port-forward): prove after apply and in status that istiod's ztunnel config decides every caller and Service as the access model does; empty turns the proof off")
}

func (f *instanceFlags) options() reconciler.Options {
	opts := reconciler.DefaultOptions()
	opts.Name = f.name
	opts.IstiodXDS = f.istiodXDS
	return opts
}

// reconciler connects and returns a Reconciler of the instance.
func (f *instanceFlags) reconciler(ctx context.Context) (*reconciler.Reconciler, *clients, error) {
	return connectReconciler(ctx, &f.kube, f.options())
}

// sourceFlags add what a repository may write: all that the commands
// comparing a repository with the cluster (diff, drift, plan) take.
type sourceFlags struct {
	instance   instanceFlags
	allowKinds []string
	namespaces []string
	render     renderFlags
}

func (f *sourceFlags) register(cmd *cobra.Command) {
	f.instance.register(cmd)
	f.render.register(cmd)
	cmd.Flags().StringSliceVar(&f.allowKinds, "allow-kind", nil, "kind the repository may write although refused by default (RBAC, Secrets, webhooks, CRDs, cluster-scoped kinds), spelled Kind.group such as Role.rbac.authorization.k8s.io or Secret (repeatable)")
	cmd.Flags().StringSliceVar(&f.namespaces, "source-namespaces", nil, "the only namespaces the repository may write in (default: any)")
}

func (f *sourceFlags) options() reconciler.Options {
	opts := f.instance.options()
	opts.Admit = admit.Policy{Allow: f.allowKinds, Namespaces: f.namespaces}
	opts.Render = f.render.options()
	return opts
}

func (f *sourceFlags) validate() error {
	if err := f.options().Admit.Validate(); err != nil {
		return fmt.Errorf("--allow-kind: %w", err)
	}
	return nil
}

func (f *sourceFlags) reconciler(ctx context.Context) (*reconciler.Reconciler, *clients, error) {
	if err := f.validate(); err != nil {
		return nil, nil, err
	}
	return connectReconciler(ctx, &f.instance.kube, f.options())
}

// connectReconciler checks the cluster once and returns a Reconciler
// working through it.
func connectReconciler(ctx context.Context, kube *kubeFlags, opts reconciler.Options) (*reconciler.Reconciler, *clients, error) {
	cl, err := kube.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	return reconciler.New(cl.client, opts), cl, nil
}

// outputFormat is the value of -o: one of the formats its command offers,
// refused while the flags are parsed, before anything else runs.
type outputFormat struct {
	value   string
	formats []string
}

// addOutput registers -o/--output with the formats a command offers, the
// first being the default, and their shell completion.
func addOutput(cmd *cobra.Command, formats ...string) *outputFormat {
	o := &outputFormat{value: formats[0], formats: formats}
	cmd.Flags().VarP(o, "output", "o", "output format: "+strings.Join(formats, ", "))
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return formats, cobra.ShellCompDirectiveNoFileComp
	})
	return o
}

func (o *outputFormat) String() string { return o.value }
func (o *outputFormat) Type() string   { return strings.Join(o.formats, "|") }

func (o *outputFormat) Set(v string) error {
	if !slices.Contains(o.formats, v) {
		return fmt.Errorf("unknown output format %q: use %s", v, strings.Join(o.formats, ", "))
	}
	o.value = v
	return nil
}

// encoded reports whether the format is json or yaml and, if it is, writes
// v in it: the same document in either.
func (o *outputFormat) encoded(w io.Writer, v any) (bool, error) {
	switch o.value {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return true, enc.Encode(v)
	case "yaml":
		out, err := yaml.Marshal(v)
		if err != nil {
			return true, fmt.Errorf("yaml output: %w", err)
		}
		_, err = w.Write(out)
		return true, err
	}
	return false, nil
}
