package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// kubeFlags are kubectl's connection flags.
type kubeFlags struct {
	kubeconfig string
	context    string
	as         string
	asGroups   []string
}

func (k *kubeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&k.context, "context", "", "kubeconfig context to use")
	cmd.Flags().StringVar(&k.as, "as", "", "user to impersonate, such as system:serviceaccount:mesh:repo-writer: the repository can do no more than that account, which also needs meshcd's own state (config/rbac.yaml)")
	cmd.Flags().StringSliceVar(&k.asGroups, "as-group", nil, "group to impersonate (repeatable)")
}

// clients connects to the cluster.
type clients struct {
	config  *rest.Config
	client  client.Client
	dynamic dynamic.Interface
}

func (k *kubeFlags) connect() (*clients, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.Impersonate = rest.ImpersonationConfig{UserName: k.as, Groups: k.asGroups}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	return &clients{config: cfg, client: c, dynamic: dyn}, nil
}
