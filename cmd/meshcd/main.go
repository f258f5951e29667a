package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command, as `flux diff` and `terraform plan`
// use them, and plan's own 3.
const (
	exitOK       = 0
	exitChanges  = 1 // findings of error level, or changes to apply
	exitError    = 2 // bad input or a failure
	exitFindings = 3 // plan: the head introduces an error finding
)

var (
	// errNotClean reports that the command ran and found what exit code 1
	// stands for: error findings, changes to apply, or an unhealthy result.
	errNotClean = errors.New("not clean")
	// errFindingsIntroduced reports that a plan's head introduces an error
	// finding, exit code 3.
	errFindingsIntroduced = errors.New("error findings introduced")
)

func main() {
	// SIGINT and SIGTERM end the context: `meshcd run` then releases its
	// leader lease and closes its server before it exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run with a context that cancels the command.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errNotClean):
		return exitChanges
	case errors.Is(err, errFindingsIntroduced):
		return exitFindings
	default:
		fmt.Fprintln(stderr, "meshcd:", err)
		return exitError
	}
}

func newRootCommand(stdout io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "meshcd",
		Short: "GitOps for Istio ambient mesh: render, check, apply and watch a mesh spec",
		Example: "  meshcd validate ./mesh\n" +
			"  meshcd plan --repo . --base main --head my-change -o markdown\n" +
			"  meshcd apply ./mesh --context prod\n" +
			"  source <(meshcd completion bash)",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v, _ := cmd.Flags().GetBool("version"); v {
				return printVersion(stdout, "text")
			}
			return cmd.Help()
		},
	}
	root.Flags().Bool("version", false, "show meshcd's version, as `meshcd version` does")
	root.AddCommand(newRenderCommand(stdout), newValidateCommand(stdout), newApplyCommand(stdout), newDiffCommand(stdout), newDriftCommand(stdout), newStatusCommand(stdout), newAllowPruneCommand(stdout),
		newRunCommand(), newSuspendCommand(true), newSuspendCommand(false), newPlanCommand(stdout), newBundleCommand(stdout), newRolloutCommand(stdout), newVersionCommand(stdout))
	root.AddCommand(newAccessCommand(stdout))
	root.AddCommand(newMigrateCommand(stdout))
	root.AddCommand(newExplainCommand(stdout))
	return root
}
