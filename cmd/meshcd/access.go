package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshcd/meshcd/access"
	"github.com/meshcd/meshcd/renderer"
)

func newAccessCommand(stdout io.Writer) *cobra.Command {
	var (
		from, to string
		output   *outputFormat
		req      access.Request
		headers  []string
	)
	cmd := &cobra.Command{
		Use:   "access DIR",
		Short: "Who may call what: the effective access the rendered policies give, and where it is enforced",
		Long: "access renders DIR and decides, with istiod's ambient semantics, whether a caller gets through to a Service port,\n" +
			"where that is enforced (the waypoint or the destination's ztunnel) and by which AuthorizationPolicies.\n" +
			"With --from and --to it answers one question; without them it prints every identity the spec names\n" +
			"against every Service port. A request attribute a rule examines but the question leaves open makes the\n" +
			"answer \"depends\"; what the model cannot evaluate (a CUSTOM provider, a namespace not in DIR) is \"undecided\".\n" +
			"Exit codes: one question: 0 allowed, 1 denied, depends or undecided, 2 bad input;\n" +
			"the matrix: 0 every cell decided or depending on the request, 1 some cell undecided, 2 bad input.",
		Example: "  meshcd access ./mesh                                   # the matrix\n" +
			"  meshcd access ./mesh --from shop/web --to shop/orders --method GET --path /api/v1\n" +
			"  meshcd access ./mesh -o markdown > access.md",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (from == "") != (to == "") {
				return fmt.Errorf("--from and --to go together: give both for one verdict, or neither for the matrix")
			}
			for _, h := range headers {
				name, value, ok := strings.Cut(h, "=")
				if !ok {
					return fmt.Errorf("--header %q is not NAME=VALUE", h)
				}
				if req.Headers == nil {
					req.Headers = map[string]string{}
				}
				req.Headers[strings.ToLower(name)] = value
			}
			ropts := renderer.DefaultOptions()
			b, err := renderer.Render(args[0], ropts)
			if err != nil {
				return err
			}
			model, err := access.Build(b.Objects, access.Options{RootNamespace: ropts.RootNamespace, TrustDomain: ropts.TrustDomain})
			if err != nil {
				return err
			}
			if from == "" {
				mx := model.Matrix(req)
				if err := access.WriteMatrix(stdout, mx, output.String()); err != nil {
					return err
				}
				if mx.Undecided() > 0 {
					return errNotClean
				}
				return nil
			}
			id, err := access.ParseIdentity(from)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			dest, err := model.ResolveDestination(to)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			v := model.Check(id, dest, req)
			if err := access.WriteVerdict(stdout, v, req, output.String()); err != nil {
				return err
			}
			if !v.Allowed {
				return errNotClean
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "the caller, NAMESPACE/SERVICEACCOUNT")
	f.StringVar(&to, "to", "", "the destination, NAMESPACE/SERVICE[:PORT] (the port may be left out when the Service has one)")
	f.StringVar(&req.Method, "method", "", "the request's HTTP method")
	f.StringVar(&req.Path, "path", "", "the request's path")
	f.StringVar(&req.Host, "host", "", "the request's host")
	f.StringVar(&req.RequestPrincipal, "request-principal", "", "the request's JWT as ISSUER/SUBJECT")
	f.BoolVar(&req.NoJWT, "no-jwt", false, "the request carries no JWT")
	f.StringArrayVar(&headers, "header", nil, "a request header NAME=VALUE (repeatable)")
	output = addOutput(cmd, "text", "json", "markdown")
	return cmd
}
