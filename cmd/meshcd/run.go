package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshcd/meshcd/reconciler/controller"
	"github.com/meshcd/meshcd/reconciler/drift"
	"github.com/meshcd/meshcd/reconciler/lister"
	"github.com/meshcd/meshcd/reconciler/source"
)

type runFlags struct {
	reconcile      reconcileFlags
	repo, branch   string
	tag, commit    string
	path           string
	interval       time.Duration
	schedule       string
	mode           string
	listen         string
	credentialsDir string
	webhookSecret  string
	leaderElect    bool
	workDir        string
}

func newRunCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Reconcile a git repository continuously: on an interval, a cron schedule, a push webhook and drift",
		Long: "run is the controller: it follows a branch (or a pinned tag or commit), reconciles on an interval,\n" +
			"a cron schedule and push webhooks, watches the applied objects for drift, and serves /metrics,\n" +
			"/healthz, /readyz and /hook. It checks the cluster once at start, within --request-timeout;\n" +
			"its watches are not bounded by it.",
		Example: "  meshcd run --repo https://github.com/acme/mesh --branch main --path clusters/prod\n" +
			"  meshcd run --repo ssh://git@github.com/acme/mesh --credentials-dir /etc/meshcd/git --leader-elect",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd.Context(), cmd.ErrOrStderr())
		},
	}
	f.reconcile.register(cmd)
	cmd.Flags().StringVar(&f.repo, "repo", "", "repository URL: file://, https:// or ssh:// (required)")
	cmd.Flags().StringVar(&f.branch, "branch", "main", "branch to follow")
	cmd.Flags().StringVar(&f.tag, "tag", "", "tag to pin instead of a branch")
	cmd.Flags().StringVar(&f.commit, "commit", "", "commit to pin instead of a branch")
	cmd.Flags().StringVar(&f.path, "path", ".", "spec directory inside the repository")
	cmd.Flags().DurationVar(&f.interval, "interval", time.Minute, "reconcile interval (0 disables it)")
	cmd.Flags().StringVar(&f.schedule, "schedule", "", "cron schedule for reconciles, such as '*/5 * * * *'")
	cmd.Flags().StringVar(&f.mode, "drift-mode", string(drift.ModeCorrect), "what a drift leads to: correct or report")
	cmd.Flags().StringVar(&f.listen, "listen", ":8080", "address for /metrics, /healthz, /readyz and /hook")
	cmd.Flags().StringVar(&f.credentialsDir, "credentials-dir", "", "directory with git credentials (username, password, bearerToken, identity, known_hosts)")
	cmd.Flags().StringVar(&f.webhookSecret, "webhook-secret-file", "", "file with the shared secret of push webhooks; /hook is off without it")
	cmd.Flags().BoolVar(&f.leaderElect, "leader-elect", false, "elect one leader among replicas; only it reconciles")
	cmd.Flags().StringVar(&f.workDir, "work-dir", os.TempDir(), "directory for checkouts")
	_ = cmd.MarkFlagRequired("repo")
	return cmd
}

// validate checks every flag of run, and reads the files they name, before
// anything connects to the cluster or joins a leader election: a mistake
// ends the command at once with exit code 2, naming the flag and the fix.
func (f *runFlags) validate() (*source.Auth, []byte, error) {
	if err := f.reconcile.validate(); err != nil {
		return nil, nil, err
	}
	if f.interval < 0 {
		return nil, nil, fmt.Errorf("invalid --interval %s: use a positive duration such as 1m, or 0 to reconcile only on --schedule, webhooks and drift", f.interval)
	}
	if f.schedule != "" {
		if _, err := controller.ParseSchedule(f.schedule); err != nil {
			return nil, nil, fmt.Errorf("invalid --schedule: %w; use five fields (minute hour day-of-month month day-of-week) such as '*/5 * * * *', or a descriptor such as @hourly or '@every 10m'", err)
		}
	}
	if f.mode != string(drift.ModeCorrect) && f.mode != string(drift.ModeReport) {
		return nil, nil, fmt.Errorf("invalid --drift-mode %q: use correct or report", f.mode)
	}
	if err := validListen(f.listen); err != nil {
		return nil, nil, fmt.Errorf("invalid --listen %q: %w; use host:port or :port, such as :8080 or 127.0.0.1:8080", f.listen, err)
	}
	auth, err := f.auth()
	if err != nil {
		return nil, nil, err
	}
	var secret []byte
	if f.webhookSecret != "" {
		if secret, err = os.ReadFile(f.webhookSecret); err != nil {
			return nil, nil, fmt.Errorf("--webhook-secret-file: %w", err)
		}
		secret = []byte(strings.TrimSpace(string(secret)))
	}
	return auth, secret, nil
}

// validListen checks a listen address without resolving its host.
func validListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q: not a number from 0 to 65535", port)
	}
	return nil
}

func (f *runFlags) run(ctx context.Context, stderr io.Writer) error {
	auth, secret, err := f.validate()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	cl, err := f.reconcile.source.instance.kube.connectWatching(ctx)
	if err != nil {
		return err
	}
	opts := controller.Options{
		Source:        source.Options{URL: f.repo, Ref: source.Ref{Branch: f.branch, Tag: f.tag, Commit: f.commit}, Path: f.path, Auth: auth, WorkDir: f.workDir},
		Reconciler:    f.reconcile.options(),
		Interval:      f.interval,
		Cron:          f.schedule,
		Drift:         drift.Mode(f.mode),
		WebhookSecret: secret,
	}
	if f.tag != "" || f.commit != "" {
		opts.Source.Ref.Branch = ""
	}
	// Typed clients of the two groups run writes to, not the whole
	// clientset: its other groups would only add to the binary.
	core, err := typedcorev1.NewForConfig(cl.config)
	if err != nil {
		return fmt.Errorf("cluster client: %w", err)
	}
	leases, err := coordinationv1.NewForConfig(cl.config)
	if err != nil {
		return fmt.Errorf("cluster client: %w", err)
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: core.Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(clientgoscheme.Scheme, corev1.EventSource{Component: "meshcd"})
	// Informers serve the reconciles' bulk lists, so that a reconcile that
	// changes nothing lists nothing from the API server, and the drift watch.
	lists, err := lister.Start(ctx, cl.config, cl.client)
	if err != nil {
		return err
	}
	ctrl := controller.New(cl.client, lists, recorder, log, opts)

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", f.listen, err)
	}
	log.Info("meshcd running", "repo", source.SafeURL(f.repo), "listen", ln.Addr().String(), "leaderElect", f.leaderElect)
	return serveWhile(ctx, log, &http.Server{Handler: ctrl.Handler(), ReadHeaderTimeout: 10 * time.Second}, ln, func(ctx context.Context) error {
		if !f.leaderElect {
			return ctrl.Run(ctx)
		}
		id, _ := os.Hostname()
		return ctrl.RunElected(ctx, leases, fmt.Sprintf("%s-%d", id, os.Getpid()))
	})
}

// serveWhile runs loop while srv serves ln, and ends both when either
// ends: a server that stops serving cancels the loop's context (which ends
// a leader election too) and its error is logged and returned; a loop that
// returns closes the server. It returns when both have ended.
func serveWhile(ctx context.Context, log *slog.Logger, srv *http.Server, ln net.Listener, loop func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			served <- nil
			return
		}
		err = fmt.Errorf("the server of /metrics, /healthz, /readyz and /hook on %s stopped: %w; meshcd stops too, so that it is restarted", ln.Addr(), err)
		log.Error("server stopped", "listen", ln.Addr().String(), "error", err)
		served <- err
		cancel()
	}()
	loopErr := loop(ctx)
	_ = srv.Close()
	return errors.Join(<-served, loopErr)
}

func (f *runFlags) auth() (*source.Auth, error) {
	if f.credentialsDir != "" {
		return source.AuthFromDir(f.credentialsDir)
	}
	return source.AuthFromEnv()
}

func newSuspendCommand(suspend bool) *cobra.Command {
	var flags instanceFlags
	use, short := "suspend", "Stop reconciles of this meshcd instance until resume"
	if !suspend {
		use, short = "resume", "Resume reconciles of a suspended meshcd instance"
	}
	cmd := &cobra.Command{
		Use: use, Short: short, Args: cobra.NoArgs,
		Example: fmt.Sprintf("  meshcd %s\n  meshcd %s --context prod --name payments", use, use),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := flags.kube.connect(cmd.Context())
			if err != nil {
				return err
			}
			opts := flags.options()
			st := &controller.StatusStore{Client: cl.client, Namespace: opts.Namespace, Name: "meshcd-status-" + opts.Name}
			return st.SetSuspend(cmd.Context(), suspend)
		},
	}
	flags.register(cmd)
	return cmd
}
