package localcluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options tune a cluster.
type Options struct {
	// BinDir holds the binaries hack/tools/build.sh built; default BinDir().
	BinDir string
	// StateDir holds data, certificates and logs; default a new temp dir,
	// removed by Stop.
	StateDir string
	// Nodes is the number of kwok nodes; default 3.
	Nodes int
	// MaxRequestsInflight and MaxMutatingRequestsInflight, when set, lower
	// the apiserver's limits, to provoke throttling.
	MaxRequestsInflight, MaxMutatingRequestsInflight int
	// Detach lets the processes outlive the program that started them;
	// otherwise they are killed when it dies.
	Detach bool
	// Log receives progress lines; nil discards them.
	Log func(format string, args ...any)
}

// Cluster is a running local control plane.
type Cluster struct {
	opts       Options
	ownState   bool
	token      string
	kubeconfig string
	ports      ports
	procs      []*process
	apiserver  *process
	startup    time.Duration
}

type ports struct {
	etcd, etcdPeer, apiserver, kwok                                                      int
	istiodHTTP, istiodHTTPS, istiodGRPC, istiodSecureGRPC, istiodMonitoring, istiodCtrlz int
}

// Binaries the cluster runs.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "pilot-discovery", "istioctl"}

// BinDir is $MESHCD_BIN, or bin/ at the root of the meshcd repository.
func BinDir() string {
	if d := os.Getenv("MESHCD_BIN"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		return "bin"
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/meshcd/meshcd\n") {
			return filepath.Join(dir, "bin")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "bin"
		}
		dir = parent
	}
}

// Missing lists the binaries and CRDs absent from dir.
func Missing(dir string) []string {
	var out []string
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			out = append(out, b)
		}
	}
	for _, assets := range []string{"crds", "kwok-stages"} {
		if m, _ := filepath.Glob(filepath.Join(dir, assets, "*")); len(m) == 0 {
			out = append(out, assets)
		}
	}
	return out
}

// Start brings up etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, kwok with its nodes, the Gateway API and Istio CRDs and
// istiod, all on loopback with free ports. On failure everything started
// is stopped again.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.BinDir == "" {
		opts.BinDir = BinDir()
	}
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Log == nil {
		opts.Log = func(string, ...any) {}
	}
	if m := Missing(opts.BinDir); len(m) > 0 {
		return nil, fmt.Errorf("local cluster needs %s in %s; run make tools", strings.Join(m, ", "), opts.BinDir)
	}
	started := &Cluster{opts: opts}
	c = started
	if c.opts.StateDir == "" {
		if c.opts.StateDir, err = os.MkdirTemp("", "meshcd-cluster-"); err != nil {
			return nil, err
		}
		c.ownState = true
	}
	defer func() {
		if err != nil {
			_ = started.Stop() // c is nil by now
		}
	}()
	start := time.Now()
	if err := c.prepare(); err != nil {
		return nil, err
	}
	for _, step := range []struct {
		name string
		run  func(context.Context) error
	}{
		{"etcd", c.startEtcd},
		{"kube-apiserver", c.StartAPIServer},
		{"kube-controller-manager and kube-scheduler", c.startControllers},
		{"kwok and its nodes", c.startKwok},
		{"CRDs", c.installCRDs},
		{"istiod", c.startIstiod},
	} {
		t := time.Now()
		if err := step.run(ctx); err != nil {
			return nil, fmt.Errorf("start %s: %w", step.name, err)
		}
		opts.Log("%s up in %s", step.name, time.Since(t).Round(time.Millisecond))
	}
	c.startup = time.Since(start)
	opts.Log("local cluster up in %s (state in %s)", c.startup.Round(time.Millisecond), c.opts.StateDir)
	return c, nil
}

// prepare picks ports and writes the service-account key, the token file
// and the kubeconfig.
func (c *Cluster) prepare() error {
	for _, p := range []*int{&c.ports.etcd, &c.ports.etcdPeer, &c.ports.apiserver, &c.ports.kwok,
		&c.ports.istiodHTTP, &c.ports.istiodHTTPS, &c.ports.istiodGRPC, &c.ports.istiodSecureGRPC, &c.ports.istiodMonitoring, &c.ports.istiodCtrlz} {
		port, err := freePort()
		if err != nil {
			return err
		}
		*p = port
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(c.path("sa.key"), keyPEM, 0o600); err != nil {
		return err
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return err
	}
	c.token = hex.EncodeToString(tok)
	if err := os.WriteFile(c.path("tokens.csv"), []byte(c.token+`,admin,admin,"system:masters"`+"\n"), 0o600); err != nil {
		return err
	}
	c.kubeconfig = c.path("kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://127.0.0.1:%d", c.ports.apiserver), InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: c.token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin"}
	cfg.CurrentContext = "local"
	return clientcmd.WriteToFile(*cfg, c.kubeconfig)
}

func (c *Cluster) path(name string) string { return filepath.Join(c.opts.StateDir, name) }
func (c *Cluster) bin(name string) string  { return filepath.Join(c.opts.BinDir, name) }

// Kubeconfig is the path of an admin kubeconfig.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// StateDir holds the cluster's data and logs.
func (c *Cluster) StateDir() string { return c.opts.StateDir }

// RESTConfig is an admin client config.
func (c *Cluster) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", c.ports.apiserver),
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             500,
		Burst:           1000,
	}
}

// IstiodMonitoringURL serves istiod's /metrics and /debug endpoints.
func (c *Cluster) IstiodMonitoringURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d", c.ports.istiodMonitoring)
}

// IstiodXDSAddress is istiod's plaintext gRPC xDS port, host:port.
func (c *Cluster) IstiodXDSAddress() string {
	return fmt.Sprintf("127.0.0.1:%d", c.ports.istiodGRPC)
}

// StartupTime is how long Start took.
func (c *Cluster) StartupTime() time.Duration { return c.startup }

// RSS returns each running process's resident set size in bytes.
func (c *Cluster) RSS() map[string]int64 {
	out := map[string]int64{}
	for _, p := range c.procs {
		if rss, err := p.rss(); err == nil {
			out[p.name] = rss
		}
	}
	return out
}

// Pids are the process ids of the running processes, by name.
func (c *Cluster) Pids() map[string]int {
	out := map[string]int{}
	for _, p := range c.procs {
		if p.running() {
			out[p.name] = p.cmd.Process.Pid
		}
	}
	return out
}

// Stop stops every process, newest first, and removes the state directory
// when Start created it.
func (c *Cluster) Stop() error {
	var errs []error
	for i := len(c.procs) - 1; i >= 0; i-- {
		if err := c.procs[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	c.procs = nil
	if c.ownState {
		if err := os.RemoveAll(c.opts.StateDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// freePort picks a free port below Linux's ephemeral range (32768 and
// up), so that the outgoing connections of the tests, which take their
// local ports from that range, cannot take it before its server binds it.
func freePort() (int, error) {
	for range 100 {
		port := 20000 + mathrand.IntN(12768)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, errors.New("free port: none found in 20000-32767 after 100 tries")
}
