package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcd/meshcd/reconciler/lister"
)

// defaultRequestTimeout bounds every request to the API server unless
// --request-timeout says otherwise. kubectl waits forever by default;
// client-go's discovery gives up after 32 s. 30 s lets a loaded server
// answer a list of thousands of objects (the 14,800-object benchmark lists
// in a few seconds) while a dead or hanging cluster fails a CI job within
// half a minute.
const defaultRequestTimeout = 30 * time.Second

// kubeFlags are kubectl's connection flags.
type kubeFlags struct {
	kubeconfig     string
	context        string
	as             string
	asGroups       []string
	requestTimeout time.Duration
}

func (k *kubeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().StringVar(&k.context, "context", "", "kubeconfig context to use")
	cmd.Flags().StringVar(&k.as, "as", "", "user to impersonate, such as system:serviceaccount:mesh:repo-writer: the repository can do no more than that account, which also needs meshcd's own state (config/rbac.yaml)")
	cmd.Flags().StringSliceVar(&k.asGroups, "as-group", nil, "group to impersonate (repeatable)")
	cmd.Flags().DurationVar(&k.requestTimeout, "request-timeout", defaultRequestTimeout, "how long to wait for the API server's answer to one request, and to the first check that it is there; 0 waits forever")
	_ = cmd.RegisterFlagCompletionFunc("context", k.completeContexts)
}

// clients connects to the cluster.
type clients struct {
	config *rest.Config
	client client.Client
}

// connect loads the kubeconfig and checks, once and within
// --request-timeout, that its server is a Kubernetes API server that
// answers; every later request is bounded by --request-timeout too.
func (k *kubeFlags) connect(ctx context.Context) (*clients, error) {
	return k.dial(ctx, true)
}

// connectWatching is connect for commands that keep watches open (run,
// drift --watch): the first check is bounded, the requests are not, since
// a bound on each request would cut every watch.
func (k *kubeFlags) connectWatching(ctx context.Context) (*clients, error) {
	return k.dial(ctx, false)
}

func (k *kubeFlags) dial(ctx context.Context, bounded bool) (*clients, error) {
	cfg, contextName, err := k.load()
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.Impersonate = rest.ImpersonationConfig{UserName: k.as, Groups: k.asGroups}
	if err := k.check(ctx, cfg, contextName); err != nil {
		return nil, err
	}
	if bounded {
		cfg.Timeout = k.requestTimeout
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	// Bulk lists that no informer serves are decoded once.
	direct, err := lister.NewDirect(cfg, c)
	if err != nil {
		return nil, err
	}
	return &clients{config: cfg, client: direct}, nil
}

// load reads the kubeconfig and returns its client configuration and the
// name of the context it comes from. A kubeconfig that does not exist is
// named, whichever way it was given.
func (k *kubeFlags) load() (*rest.Config, string, error) {
	if k.kubeconfig != "" {
		if _, err := os.Stat(k.kubeconfig); err != nil {
			return nil, "", fmt.Errorf("kubeconfig %s (--kubeconfig) cannot be read: %w", k.kubeconfig, err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, "", noKubeconfig(rules)
		}
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	name := k.context
	if raw, err := cc.RawConfig(); err == nil && name == "" {
		name = raw.CurrentContext
	}
	if name == "" {
		name = "in-cluster"
	}
	return cfg, name, nil
}

// noKubeconfig explains an empty configuration: which files were looked
// for and which of them do not exist.
func noKubeconfig(rules *clientcmd.ClientConfigLoadingRules) error {
	var missing, empty []string
	for _, p := range rules.GetLoadingPrecedence() {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		} else {
			empty = append(empty, p)
		}
	}
	where := "~/.kube/config"
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		where = clientcmd.RecommendedConfigPathEnvVar + "=" + env
	}
	switch {
	case len(empty) > 0:
		return fmt.Errorf("kubeconfig %s has no current context and no cluster: pass --context, or set a current context with kubectl config use-context", strings.Join(empty, ", "))
	case len(missing) > 0:
		return fmt.Errorf("no kubeconfig: %s does not exist (from %s) and meshcd is not running in a cluster: pass --kubeconfig or set KUBECONFIG to a kubeconfig file", strings.Join(missing, ", "), where)
	}
	return fmt.Errorf("no kubeconfig (from %s) and meshcd is not running in a cluster: pass --kubeconfig or set KUBECONFIG to a kubeconfig file", where)
}

// check asks the server for its version and its core API, within
// --request-timeout, so that a cluster that is down, hangs or is not
// Kubernetes fails once, before any per-object work.
func (k *kubeFlags) check(ctx context.Context, cfg *rest.Config, contextName string) error {
	probe := rest.CopyConfig(cfg)
	probe.Timeout = k.requestTimeout
	if k.requestTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, k.requestTimeout)
		defer cancel()
	}
	dc, err := discovery.NewDiscoveryClientForConfig(probe)
	if err == nil {
		err = serves(ctx, dc)
	}
	if err == nil {
		return nil
	}
	return &clusterError{server: safeHost(cfg.Host), context: contextName, err: err, timeout: k.requestTimeout}
}

// serves fails unless the server answers /version and /api as a
// Kubernetes API server does.
func serves(ctx context.Context, dc *discovery.DiscoveryClient) error {
	if _, err := dc.RESTClient().Get().AbsPath("/version").Do(ctx).Raw(); err != nil {
		return probeFailed("/version", err)
	}
	var core metav1.APIVersions
	if err := dc.RESTClient().Get().AbsPath("/api").Do(ctx).Into(&core); err != nil {
		return probeFailed("/api", err)
	}
	if len(core.Versions) == 0 {
		return errors.New("GET /api lists no API version")
	}
	return nil
}

func probeFailed(path string, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("GET %s answered 404 Not Found: %w", path, err)
	}
	return fmt.Errorf("GET %s: %w", path, err)
}

// clusterError is the one message a command prints when the cluster check
// fails: the server, the context, the cause and what to do.
type clusterError struct {
	server, context string
	timeout         time.Duration
	err             error
}

func (e *clusterError) Error() string {
	cause, hint := e.explain()
	return fmt.Sprintf("cluster %s (context %q) %s; %s", e.server, e.context, cause, hint)
}

func (e *clusterError) Unwrap() error { return e.err }

func (e *clusterError) explain() (cause, hint string) {
	var (
		nerr net.Error
		dns  *net.DNSError
	)
	switch {
	case apierrors.IsNotFound(e.err):
		return "is not a Kubernetes API server: " + e.err.Error(), "check the server address of the context in the kubeconfig"
	case apierrors.IsUnauthorized(e.err):
		return "rejected the credentials (401 Unauthorized)", "renew the credentials of the context in the kubeconfig"
	case apierrors.IsForbidden(e.err):
		return "refused the check: " + e.err.Error(), "check the user (and --as) the context uses"
	case errors.Is(e.err, syscall.ECONNREFUSED):
		return "refused the connection", "check that the API server is running and that --context names the right cluster"
	case errors.As(e.err, &dns):
		return "cannot be resolved: " + dns.Error(), "check the server address of the context in the kubeconfig"
	case errors.Is(e.err, context.DeadlineExceeded), errors.As(e.err, &nerr) && nerr.Timeout():
		return fmt.Sprintf("did not answer within %s (--request-timeout)", e.timeout), "check that the address is the API server's, or raise --request-timeout"
	}
	return "cannot be reached: " + e.err.Error(), "check the kubeconfig and the network"
}

// safeHost is a server address without any user information in it.
func safeHost(host string) string {
	u, err := url.Parse(host)
	if err != nil || u.User == nil {
		return host
	}
	u.User = nil
	return u.String()
}

// completeContexts offers the kubeconfig's context names for --context.
func (k *kubeFlags) completeContexts(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kc, _ := cmd.Flags().GetString("kubeconfig"); kc != "" {
		rules.ExplicitPath = kc
	}
	raw, err := rules.Load()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(raw.Contexts))
	for name := range raw.Contexts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, cobra.ShellCompDirectiveNoFileComp
}
