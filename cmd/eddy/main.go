// Command eddy is the Eddy broker and its command-line client in one binary.
//
//	eddy serve                      start a node (data in ./eddy-data, HTTP on :8080)
//	eddy topic create sensors -p 3  manage topics
//	eddy produce sensors < lines    produce
//	eddy consume sensors --from-beginning
//	eddy bench produce              load-generate
//	eddy transform init|build|deploy write and run WebAssembly transforms
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/eddy-broker/eddy/internal/buildinfo"
	"github.com/spf13/cobra"
)

// version names the binary (internal/buildinfo: stamped at build, or the
// module's version and VCS commit).
var version = buildinfo.Version() + " (" + buildinfo.Commit() + ")"

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "eddy:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "eddy",
		Short:         "Eddy: an event-streaming broker for the edge",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.String("server", "http://127.0.0.1:8080", "node to talk to (env EDDY_SERVER, or the profile's)")
	pf.String("token", "", "bearer token (env EDDY_TOKEN, or the profile's)")
	pf.String("profile", "", "CLI profile to use (env EDDY_PROFILE; default: the current one)")
	pf.String("ca-file", "", "PEM certificates trusted for an https server besides the system's (env EDDY_CA_FILE, or the profile's)")
	root.AddCommand(newServe(), newTopic(), newProduce(), newConsume(), newBench(), newConfig(),
		newTenant(), newToken(), newProfile(), newCluster(), newCert(), newTransform(), newGroup(), newLink(), newConsole(), newVersion())
	strictGroups(root)
	completeNames(root)
	addExamples(root)
	return root
}

// strictGroups makes every command that only groups others (eddy topic,
// eddy link, ...) refuse an unknown subcommand with an error, a
// suggestion and a non-zero exit, instead of printing its help and
// exiting 0 (cobra's default below the root).
func strictGroups(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		strictGroups(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		}
		return fmt.Errorf("%s (see %s --help)", msg, c.CommandPath())
	}
}

func newVersion() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and platform of this binary",
		Example: "  eddy version\n  eddy version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(format); err != nil {
				return err
			}
			if format != "text" {
				return printValue(format, map[string]string{"version": buildinfo.Version(), "commit": buildinfo.Commit(),
					"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH})
			}
			fmt.Printf("eddy %s\ncommit %s\n%s %s/%s\n", buildinfo.Version(), buildinfo.Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
	outputFlag(cmd, &format)
	return cmd
}
