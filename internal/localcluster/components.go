package localcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// poll calls ready until it reports true, the process p dies, or timeout.
func poll(ctx context.Context, p *process, timeout time.Duration, what string, ready func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := ready(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if p != nil && !p.running() {
			return p.failed("died before " + what)
		}
		select {
		case <-ctx.Done():
			if p != nil {
				return p.failed(fmt.Sprintf("not %s after %s (last error: %v)", what, timeout, last))
			}
			return fmt.Errorf("not %s after %s: %v", what, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Cluster) startEtcd(ctx context.Context) error {
	p, err := c.spawn("etcd", c.opts.StateDir, nil, c.bin("etcd"),
		"--data-dir", c.path("etcd"),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcd),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcdPeer))
	if err != nil {
		return err
	}
	return poll(ctx, p, 30*time.Second, "serving", func(context.Context) (bool, error) {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.ports.etcd), time.Second)
		if err != nil {
			return false, err
		}
		conn.Close()
		return true, nil
	})
}

// StartAPIServer starts kube-apiserver, or starts it again after
// StopAPIServer, on the same port and etcd data.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	args := []string{
		"--etcd-servers", fmt.Sprintf("http://127.0.0.1:%d", c.ports.etcd),
		"--secure-port", strconv.Itoa(c.ports.apiserver),
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--endpoint-reconciler-type", "none",
		"--cert-dir", c.path("certs"),
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--service-account-key-file", c.path("sa.key"),
		"--service-account-signing-key-file", c.path("sa.key"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--token-auth-file", c.path("tokens.csv"),
		"--authorization-mode", "RBAC",
		"--allow-privileged",
	}
	if c.opts.MaxRequestsInflight > 0 {
		args = append(args, "--max-requests-inflight", strconv.Itoa(c.opts.MaxRequestsInflight))
	}
	if c.opts.MaxMutatingRequestsInflight > 0 {
		args = append(args, "--max-mutating-requests-inflight", strconv.Itoa(c.opts.MaxMutatingRequestsInflight))
	}
	p, err := c.spawn("kube-apiserver", c.opts.StateDir, nil, c.bin("kube-apiserver"), args...)
	if err != nil {
		return err
	}
	c.apiserver = p
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	return poll(ctx, p, 90*time.Second, "ready", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/readyz", c.ports.apiserver), nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("readyz %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		return true, nil
	})
}

// StopAPIServer stops kube-apiserver alone; the rest keeps running.
func (c *Cluster) StopAPIServer() error {
	if c.apiserver == nil {
		return errors.New("kube-apiserver is not running")
	}
	err := c.apiserver.stop()
	for i, p := range c.procs {
		if p == c.apiserver {
			c.procs = append(c.procs[:i], c.procs[i+1:]...)
			break
		}
	}
	c.apiserver = nil
	return err
}

func (c *Cluster) kube() (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(c.RESTConfig())
}

func (c *Cluster) startControllers(ctx context.Context) error {
	kcm, err := c.spawn("kube-controller-manager", c.opts.StateDir, nil, c.bin("kube-controller-manager"),
		"--kubeconfig", c.kubeconfig,
		"--controllers", "*",
		"--service-account-private-key-file", c.path("sa.key"),
		"--root-ca-file", c.path("certs/apiserver.crt"),
		"--leader-elect=false",
		"--secure-port", "0",
		"--use-service-account-credentials=false",
		"--concurrent-deployment-syncs", "10",
		"--concurrent-replicaset-syncs", "10")
	if err != nil {
		return err
	}
	if _, err := c.spawn("kube-scheduler", c.opts.StateDir, nil, c.bin("kube-scheduler"),
		"--kubeconfig", c.kubeconfig, "--leader-elect=false", "--secure-port", "0"); err != nil {
		return err
	}
	cs, err := c.kube()
	if err != nil {
		return err
	}
	// The service-account controller creates "default" in every namespace:
	// pods can be admitted once it exists.
	return poll(ctx, kcm, 60*time.Second, "issuing service accounts", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}

// kwokStages are the default node and pod lifecycle stages shipped in the
// kwok module, copied next to the binaries by hack/tools/build.sh.
var kwokStages = []string{
	"node/fast/node-initialize.yaml",
	"node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
	"pod/fast/pod-ready.yaml",
	"pod/fast/pod-complete.yaml",
	"pod/fast/pod-delete.yaml",
}

func (c *Cluster) startKwok(ctx context.Context) error {
	var cfg bytes.Buffer
	cfg.WriteString(`apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: 10.0.0.0/16
  manageAllNodes: false
  manageNodesWithAnnotationSelector: kwok.x-k8s.io/node=fake
  nodeLeaseDurationSeconds: 40
  nodeLeaseParallelism: 4
  podPlayStageParallelism: 4
  nodePlayStageParallelism: 4
`)
	for _, s := range kwokStages {
		b, err := os.ReadFile(filepath.Join(c.opts.BinDir, "kwok-stages", s))
		if err != nil {
			return fmt.Errorf("kwok stage %s: %w; run make tools", s, err)
		}
		cfg.WriteString("---\n")
		cfg.Write(b)
	}
	if err := os.WriteFile(c.path("kwok.yaml"), cfg.Bytes(), 0o644); err != nil {
		return err
	}
	p, err := c.spawn("kwok", c.opts.StateDir, nil, c.bin("kwok"),
		"--kubeconfig", c.kubeconfig, "--config", c.path("kwok.yaml"),
		"--server-address", fmt.Sprintf("127.0.0.1:%d", c.ports.kwok),
		"--node-port", strconv.Itoa(c.ports.kwok))
	if err != nil {
		return err
	}
	cs, err := c.kube()
	if err != nil {
		return err
	}
	capacity := corev1.ResourceList{
		// Fake nodes with room for a waypoint in each of thousands of
		// namespaces: a waypoint requests 100m of CPU (waypoint.resources in
		// Istio's manifests/charts/istio-control/istio-discovery/values.yaml),
		// so 32 CPUs a node held 960 on 3 nodes, and a 1,000-namespace spec
		// waited for the rest.
		corev1.ResourceCPU: resource.MustParse("1000"), corev1.ResourceMemory: resource.MustParse("8Ti"), corev1.ResourcePods: resource.MustParse("5000"),
	}
	for i := 0; i < c.opts.Nodes; i++ {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels:      map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
			},
			Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("node %s: %w", name, err)
		}
	}
	return poll(ctx, p, 60*time.Second, "making nodes Ready", func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "type=kwok"})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready == c.opts.Nodes, fmt.Errorf("%d of %d nodes Ready", ready, c.opts.Nodes)
	})
}

// installCRDs applies every document under bin/crds with server-side
// apply and waits for the CRDs to be Established.
func (c *Cluster) installCRDs(ctx context.Context) error {
	cl, err := client.New(c.RESTConfig(), client.Options{})
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(c.opts.BinDir, "crds", "*.yaml"))
	if err != nil {
		return err
	}
	var crds []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("%s: %w", filepath.Base(f), err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			if err := cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("meshcd-localcluster"), client.ForceOwnership); err != nil {
				return fmt.Errorf("%s %s from %s: %w", obj.GetKind(), obj.GetName(), filepath.Base(f), err)
			}
			if obj.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, obj.GetName())
			}
		}
	}
	return poll(ctx, nil, 60*time.Second, "Established", func(ctx context.Context) (bool, error) {
		for _, name := range crds {
			crd := &unstructured.Unstructured{}
			crd.SetAPIVersion("apiextensions.k8s.io/v1")
			crd.SetKind("CustomResourceDefinition")
			if err := cl.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			ok := false
			for _, cnd := range conds {
				m, _ := cnd.(map[string]any)
				ok = ok || (m["type"] == "Established" && m["status"] == "True")
			}
			if !ok {
				return false, fmt.Errorf("CRD %s not Established", name)
			}
		}
		return true, nil
	})
}

// startIstiod runs pilot-discovery out of cluster with the configuration
// istioctl generates for the ambient profile. A port another process took
// since prepare picked it is picked again.
func (c *Cluster) startIstiod(ctx context.Context) error {
	for try := 1; ; try++ {
		err := c.runIstiod(ctx)
		if err == nil || try == 3 || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		for _, p := range []*int{&c.ports.istiodHTTP, &c.ports.istiodHTTPS, &c.ports.istiodGRPC, &c.ports.istiodSecureGRPC, &c.ports.istiodMonitoring, &c.ports.istiodCtrlz} {
			if *p, err = freePort(); err != nil {
				return err
			}
		}
	}
}

func (c *Cluster) runIstiod(ctx context.Context) error {
	cs, err := c.kube()
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	work := c.path("istiod")
	if err := c.istioConfig(work); err != nil {
		return err
	}
	p, err := c.spawn("istiod", work, []string{
		"POD_NAMESPACE=istio-system", "POD_NAME=istiod-local", "SERVICE_ACCOUNT=istiod",
		"PILOT_ENABLE_AMBIENT=true", "REVISION=default", "PILOT_CERT_PROVIDER=istiod", "CLUSTER_ID=Kubernetes",
	}, c.bin("pilot-discovery"), "discovery",
		"--kubeconfig", c.kubeconfig,
		"--httpAddr", fmt.Sprintf("127.0.0.1:%d", c.ports.istiodHTTP),
		"--httpsAddr", fmt.Sprintf("127.0.0.1:%d", c.ports.istiodHTTPS),
		"--grpcAddr", fmt.Sprintf("127.0.0.1:%d", c.ports.istiodGRPC),
		"--secureGRPCAddr", fmt.Sprintf("127.0.0.1:%d", c.ports.istiodSecureGRPC),
		"--monitoringAddr", fmt.Sprintf("127.0.0.1:%d", c.ports.istiodMonitoring),
		"--ctrlz_port", strconv.Itoa(c.ports.istiodCtrlz),
		"--log_output_level", "default:warn")
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	return poll(ctx, p, 90*time.Second, "ready", func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/ready", c.ports.istiodHTTP), nil)
		resp, err := hc.Do(req)
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("ready: %d", resp.StatusCode)
	})
}

// istioConfig writes, under work, the injection templates and mesh config
// istiod reads, taken from `istioctl manifest generate --set profile=ambient`.
func (c *Cluster) istioConfig(work string) error {
	out, err := exec.Command(c.bin("istioctl"), "manifest", "generate", "--set", "profile=ambient").Output()
	if err != nil {
		return fmt.Errorf("istioctl manifest generate: %w", err)
	}
	files := map[string]string{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var cm corev1.ConfigMap
		if err := dec.Decode(&cm); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("istioctl output: %w", err)
		}
		if cm.Kind != "ConfigMap" {
			continue
		}
		switch cm.Name {
		case "istio-sidecar-injector":
			files["var/lib/istio/inject/config"] = cm.Data["config"]
			files["var/lib/istio/inject/values"] = cm.Data["values"]
		case "istio":
			files["etc/istio/config/mesh"] = cm.Data["mesh"]
		}
	}
	for name, content := range files {
		if content == "" {
			return fmt.Errorf("istioctl output lacks %s", name)
		}
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if len(files) != 3 {
		return fmt.Errorf("istioctl output lacks the istio or istio-sidecar-injector ConfigMap")
	}
	return nil
}
