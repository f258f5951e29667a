package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command, as `flux diff` and `terraform plan` use them.
const (
	exitOK      = 0
	exitChanges = 1 // findings of error level, or changes to apply
	exitError   = 2 // bad input or a failure
)

// errNotClean reports that the command ran and found what exit code 1
// stands for: error findings, changes to apply, or an unhealthy result.
var errNotClean = errors.New("not clean")

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errNotClean):
		return exitChanges
	default:
		fmt.Fprintln(stderr, "meshcd:", err)
		return exitError
	}
}

func newRootCommand(stdout io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "meshcd",
		Short:         "GitOps for Istio ambient mesh: render, check, apply and watch a mesh spec",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRenderCommand(stdout), newValidateCommand(stdout), newApplyCommand(stdout), newDiffCommand(stdout), newDriftCommand(stdout), newStatusCommand(stdout), newAllowPruneCommand(stdout),
		newRunCommand(), newSuspendCommand(true), newSuspendCommand(false), newPlanCommand(stdout), newBundleCommand(stdout), newRolloutCommand(stdout))
	root.AddCommand(newAccessCommand(stdout))
	root.AddCommand(newMigrateCommand(stdout))
	return root
}
