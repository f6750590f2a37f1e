package main

import (
	"testing"

	"github.com/spf13/cobra"
)

// TestEveryCommandHasAnExample: every command that does something shows
// an example in its help (groups list their commands instead).
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		if c.Runnable() && !c.HasSubCommands() && c.Example == "" && !c.Hidden && c.Name() != "help" && c.Parent() != nil && c.Parent().Name() != "completion" {
			t.Errorf("%s has no example", c.CommandPath())
		}
	}
	walk(newRoot())
	for path := range examples {
		found := false
		var find func(c *cobra.Command)
		find = func(c *cobra.Command) {
			if c.CommandPath() == path {
				found = true
			}
			for _, s := range c.Commands() {
				find(s)
			}
		}
		find(newRoot())
		if !found {
			t.Errorf("an example for %q, which is no command", path)
		}
	}
}

// noOutput are the commands without -o/--output: they print no data, only
// a confirmation or a server's log.
var noOutput = map[string]string{
	"eddy serve":            "runs a node",
	"eddy console":          "opens the console in a browser",
	"eddy transform init":   "writes a project",
	"eddy profile use":      "changes the CLI's files only",
	"eddy profile set":      "changes the CLI's files only",
	"eddy profile delete":   "changes the CLI's files only",
	"eddy cert create-ca":   "writes files",
	"eddy cert create-node": "writes files",
}

// TestEveryCommandHasOutput: every command that prints data takes
// -o/--output (consume: --output, as -o is kcat's offset).
func TestEveryCommandHasOutput(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			walk(s)
		}
		if !c.Runnable() || c.HasSubCommands() || c.Hidden || c.Name() == "help" || c.Parent() == nil || c.Parent().Name() == "completion" {
			return
		}
		_, exempt := noOutput[c.CommandPath()]
		if has := c.Flags().Lookup("output") != nil; has == exempt {
			t.Errorf("%s: --output %v, exempt %v", c.CommandPath(), has, exempt)
		}
	}
	walk(newRoot())
}
