package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"
)

// newConsole mints a short-lived token with the CLI's own scopes and opens
// the web console with it in the URL's fragment (which browsers never send
// to a server; the page removes it from the address bar at once).
func newConsole() *cobra.Command {
	var ttl time.Duration
	var open bool
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Open the web console, logged in with a short-lived token",
		Example: `  eddy console                 # prints the URL, and opens it where a browser is at hand
  eddy console --ttl 15m --open=false
  ssh -L 8080:127.0.0.1:8080 gateway   # then, on the laptop: eddy console --server 127.0.0.1:8080`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			var me struct {
				Tenant string   `json:"tenant"`
				Scopes []string `json:"scopes"`
			}
			if err := c.getJSON(ctxTimeout(), "/v1/whoami", &me); err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]any{"scopes": me.Scopes, "ttl_seconds": int64(ttl / time.Second), "subject": "console"})
			var out struct{ Token string }
			if err := c.do(ctxTimeout(), "POST", "/v1/tenants/"+url.PathEscape(me.Tenant)+"/tokens", "application/json", body, &out); err != nil {
				return fmt.Errorf("minting the console's token: %w", err)
			}
			link := c.Base + "/console/#t=" + url.QueryEscape(out.Token)
			fmt.Println(link)
			if open && os.Getenv("DISPLAY")+os.Getenv("WAYLAND_DISPLAY") != "" {
				if p, err := exec.LookPath("xdg-open"); err == nil {
					return exec.Command(p, link).Start()
				}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "lifetime of the console's token")
	cmd.Flags().BoolVar(&open, "open", true, "open the URL in a browser when one is at hand (xdg-open)")
	return cmd
}
