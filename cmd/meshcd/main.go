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

// errFindings reports that the command ran but found something that fails it.
var errFindings = errors.New("error-level findings")

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
	case errors.Is(err, errFindings):
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
	root.AddCommand(newRenderCommand(stdout), newValidateCommand(stdout))
	return root
}
