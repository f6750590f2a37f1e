package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completeNames gives shell completion (eddy completion bash|zsh|fish)
// the names a command's first argument takes, from the server: topics,
// groups, tenants, links, transforms.
func completeNames(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		completeNames(c)
	}
	use := " " + strings.Fields(cmd.Use + " x")[1] // the first placeholder
	parent := ""
	if cmd.HasParent() {
		parent = cmd.Parent().Name()
	}
	list := ""
	switch {
	case use == " TOPIC":
		list = "topics"
	case use == " GROUP":
		list = "groups"
	case use == " NAME" && parent == "tenant":
		list = "tenants"
	case use == " NAME" && parent == "link":
		list = "links"
	case use == " NAME" && parent == "transform":
		list = "transforms"
	}
	if list == "" || cmd.ValidArgsFunction != nil {
		return
	}
	cmd.ValidArgsFunction = func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var out map[string][]struct {
			Name string `json:"name"`
		}
		if err := newClient(c).getJSON(ctx, "/v1/"+list, &out); err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, n := range out[list] {
			if strings.HasPrefix(n.Name, toComplete) {
				names = append(names, n.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
