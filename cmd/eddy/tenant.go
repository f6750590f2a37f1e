package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/node"
	"github.com/eddy-broker/eddy/tenants"
	"github.com/spf13/cobra"
)

// quotaFlags are the quota flags of tenant create and set-quota.
type quotaFlags struct {
	bytesPerSec, recordsPerSec, consumeBytesPerSec, storage, topics, partitions, transforms, transformMem, connections, transformCPU, transformStorage int64
}

func (q *quotaFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Int64Var(&q.bytesPerSec, "produce-bytes-per-sec", 0, "produce rate in bytes/s (0: unlimited)")
	f.Int64Var(&q.recordsPerSec, "produce-records-per-sec", 0, "produce rate in records/s (0: unlimited)")
	f.Int64Var(&q.consumeBytesPerSec, "consume-bytes-per-sec", 0, "consume rate in bytes/s answered, per node (0: unlimited)")
	f.Int64Var(&q.storage, "storage-bytes", 0, "retained bytes (0: unlimited)")
	f.Int64Var(&q.topics, "max-topics", 0, "topics (0: unlimited)")
	f.Int64Var(&q.partitions, "max-partitions", 0, "partitions (0: unlimited)")
	f.Int64Var(&q.transforms, "max-transforms", 0, "transforms (0: unlimited)")
	f.Int64Var(&q.transformMem, "transform-memory-bytes", 0, "transform memory (0: unlimited)")
	f.Int64Var(&q.connections, "max-connections", 0, "MQTT connections per node (0: unlimited)")
	f.Int64Var(&q.transformCPU, "transform-cpu-ms-per-sec", 0, "transform CPU per node, ms per second (0: unlimited)")
	f.Int64Var(&q.transformStorage, "transform-storage-bytes", 0, "stored transform modules (0: unlimited)")
}

func (q *quotaFlags) json() map[string]int64 {
	return map[string]int64{"produce_bytes_per_sec": q.bytesPerSec, "produce_records_per_sec": q.recordsPerSec,
		"consume_bytes_per_sec": q.consumeBytesPerSec,
		"storage_bytes":         q.storage, "max_topics": q.topics, "max_partitions": q.partitions,
		"max_transforms": q.transforms, "transform_memory_bytes": q.transformMem, "max_connections": q.connections,
		"transform_cpu_ms_per_sec": q.transformCPU, "transform_storage_bytes": q.transformStorage}
}

// given is json() limited to the flags set on cmd.
func (q *quotaFlags) given(cmd *cobra.Command) map[string]int64 {
	out := map[string]int64{}
	for k, v := range q.json() {
		if cmd.Flags().Changed(strings.ReplaceAll(k, "_", "-")) {
			out[k] = v
		}
	}
	return out
}

func tenantPath(t string) string { return "/v1/tenants/" + url.PathEscape(t) }

func newTenant() *cobra.Command {
	var tenantFormat string
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants, their quotas and keys (operator)"}
	var q quotaFlags
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant (quotas not given take the node's tenant_defaults; 0 = unlimited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]any{"name": args[0], "quotas": q.given(cmd)})
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "POST", "/v1/tenants", "application/json", body, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("created tenant %s\n", args[0])
			return nil
		},
	}
	outputFlag(create, new(string))
	q.add(create)
	var sq quotaFlags
	setQuota := &cobra.Command{
		Use:   "set-quota NAME",
		Short: "Change a tenant's quotas: the flags given change, the others keep their values (0 = unlimited)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(cmd)
			var cur struct {
				Quotas map[string]int64 `json:"quotas"`
			}
			if err := c.getJSON(ctxTimeout(), tenantPath(args[0]), &cur); err != nil {
				return err
			}
			if cur.Quotas == nil {
				cur.Quotas = map[string]int64{}
			}
			for k, v := range sq.given(cmd) {
				cur.Quotas[k] = v
			}
			body, _ := json.Marshal(map[string]any{"quotas": cur.Quotas})
			var out map[string]any
			if done, err := c.sendOut(ctxTimeout(), "PATCH", tenantPath(args[0]), "application/json", body, outputOf(cmd), &out); done || err != nil {
				return err
			}
			return printJSON(out)
		},
	}
	outputFlag(setQuota, new(string))
	sq.add(setQuota)
	list := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Tenants []struct {
					Name      string `json:"name"`
					CreatedMs int64  `json:"created_ms"`
				}
			}
			if done, err := newClient(cmd).getOut(ctxTimeout(), "/v1/tenants", tenantFormat, &out); done || err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tCREATED")
			for _, t := range out.Tenants {
				fmt.Fprintf(w, "%s\t%s\n", t.Name, time.UnixMilli(t.CreatedMs).UTC().Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
	describe := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a tenant's quotas and usage",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			if done, err := newClient(cmd).getOut(ctxTimeout(), tenantPath(args[0]), tenantFormat, &out); done || err != nil {
				return err
			}
			return printJSON(out) // text: the answer as JSON, indented
		},
	}
	outputFlag(list, &tenantFormat)
	outputFlag(describe, &tenantFormat)
	var force bool
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a tenant (--force also deletes its topics)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := tenantPath(args[0])
			if force {
				p += "?force=true"
			}
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "DELETE", p, "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("deleted tenant %s\n", args[0])
			return nil
		},
	}
	outputFlag(del, new(string))
	del.Flags().BoolVar(&force, "force", false, "also delete the tenant's topics")
	cmd.AddCommand(create, list, describe, del, setQuota, newTenantKey(), newTenantMQTT())
	return cmd
}

func newTenantKey() *cobra.Command {
	var keyFormat string
	cmd := &cobra.Command{Use: "key", Short: "Manage a tenant's token-signing public keys"}
	var alg, file string
	add := &cobra.Command{
		Use:   "add TENANT KID --file PUBLIC.pem",
		Short: "Register a public key (EdDSA, ES256 or RS256) the tenant signs its own tokens with",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pemText, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]string{"kid": args[1], "alg": alg, "public_key_pem": string(pemText)})
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "POST", tenantPath(args[0])+"/keys", "application/json", body, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("added key %s to tenant %s\n", args[1], args[0])
			return nil
		},
	}
	outputFlag(add, new(string))
	add.Flags().StringVar(&alg, "alg", "EdDSA", "EdDSA, ES256 or RS256")
	add.Flags().StringVarP(&file, "file", "f", "", "PEM file with the public key")
	add.MarkFlagRequired("file")
	list := &cobra.Command{
		Use:   "list TENANT",
		Short: "List a tenant's keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Keys []struct{ Kid, Alg string }
			}
			if done, err := newClient(cmd).getOut(ctxTimeout(), tenantPath(args[0])+"/keys", keyFormat, &out); done || err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KID\tALG")
			for _, k := range out.Keys {
				fmt.Fprintf(w, "%s\t%s\n", k.Kid, k.Alg)
			}
			return w.Flush()
		},
	}
	outputFlag(list, &keyFormat)
	remove := &cobra.Command{
		Use:   "remove TENANT KID",
		Short: "Revoke a key: tokens it signed stop working at once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "DELETE", tenantPath(args[0])+"/keys/"+url.PathEscape(args[1]), "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("removed key %s\n", args[1])
			return nil
		},
	}
	outputFlag(remove, new(string))
	cmd.AddCommand(add, list, remove)
	return cmd
}

func newToken() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Mint tokens"}
	var tenant, scopes, subject string
	var ttl time.Duration
	issue := &cobra.Command{
		Use:   "issue",
		Short: "Mint a token for a tenant (prints it on stdout)",
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]any{"scopes": strings.Split(scopes, ","), "ttl_seconds": int64(ttl / time.Second), "subject": subject})
			var out struct{ Token string }
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "POST", tenantPath(tenant)+"/tokens", "application/json", body, outputOf(cmd), &out); done || err != nil {
				return err
			}
			fmt.Println(out.Token)
			return nil
		},
	}
	outputFlag(issue, new(string))
	f := issue.Flags()
	f.StringVar(&tenant, "tenant", "default", "tenant")
	f.StringVar(&scopes, "scopes", "", "comma-separated: produce:<glob>, consume:<glob>, mqtt-pub:<filter>, mqtt-sub:<filter>, mqtt-client:<glob> ({sub}: the subject), admin, operator")
	f.DurationVar(&ttl, "ttl", time.Hour, "lifetime")
	f.StringVar(&subject, "subject", "", "sub claim (who the token is for)")
	issue.MarkFlagRequired("scopes")
	cmd.AddCommand(issue, newTokenSign())
	return cmd
}

// newTokenSign signs a device token offline with a tenant's own private
// key (registered with `eddy tenant key add`): no call to Eddy.
func newTokenSign() *cobra.Command {
	var d tenants.DeviceToken
	var tenant, scopes, keyFile string
	cmd := &cobra.Command{
		Use:   "sign --key FILE --kid KID --tenant T --scopes S",
		Short: "Sign a token offline with a tenant's own private key (no server involved)",
		Long: `Sign a token with a tenant's private key (PEM: PKCS#8, SEC 1 or PKCS#1;
Ed25519, EC P-256 or RSA >= 2048 bits). The matching public key must be
registered with "eddy tenant key add" under the same kid. --audience is the
cluster's name (cluster_name, default "eddy").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pemBytes, err := os.ReadFile(keyFile)
			if err != nil {
				return err
			}
			format := outputOf(cmd)
			if err := checkOutput(format); err != nil {
				return err
			}
			d.Tenant, d.Scopes = eddy.TenantID(tenant), strings.Split(scopes, ",")
			tok, exp, err := d.Sign(pemBytes, time.Now())
			if err != nil {
				return err
			}
			if format != "text" { // the fields of a token minted by the API
				return printValue(format, map[string]any{"token": tok, "tenant": tenant, "scopes": d.Scopes, "expires_at": exp.UTC().Format(time.RFC3339)})
			}
			fmt.Println(tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keyFile, "key", "", "the tenant's private key (PEM file)")
	f.StringVar(&d.KeyID, "kid", "", "the key's id, as registered")
	f.StringVar(&tenant, "tenant", "", "the tenant that registered the key")
	f.StringVar(&scopes, "scopes", "", "comma-separated: produce:<glob>, consume:<glob>, mqtt-pub:<filter>, mqtt-sub:<filter>, mqtt-client:<glob> ({sub}: the subject), admin")
	f.DurationVar(&d.TTL, "ttl", 24*time.Hour, "lifetime")
	f.StringVar(&d.Subject, "subject", "", "sub claim (the device)")
	f.StringVar(&d.Audience, "audience", "eddy", "the cluster's name (cluster_name)")
	for _, n := range []string{"key", "kid", "tenant", "scopes"} {
		cmd.MarkFlagRequired(n)
	}
	outputFlag(cmd, new(string))
	return cmd
}

func newProfile() *cobra.Command {
	cmd := &cobra.Command{Use: "profile", Short: "Manage CLI profiles (server + token)"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List profiles",
		RunE: func(cmd *cobra.Command, args []string) error {
			format := outputOf(cmd)
			if err := checkOutput(format); err != nil {
				return err
			}
			ps, path, err := node.LoadProfiles()
			if err != nil {
				return err
			}
			if format != "text" { // never the tokens: where they are
				type entry struct {
					Name      string `json:"name"`
					Server    string `json:"server"`
					Current   bool   `json:"current"`
					TokenFile string `json:"token_file,omitempty"`
					HasToken  bool   `json:"has_token"`
				}
				out := struct {
					File     string  `json:"file"`
					Profiles []entry `json:"profiles"`
				}{File: path, Profiles: []entry{}}
				for _, n := range ps.Names() {
					p := ps.Profiles[n]
					out.Profiles = append(out.Profiles, entry{Name: n, Server: p.Server, Current: n == ps.Current,
						TokenFile: p.TokenFile, HasToken: p.Token != "" || p.TokenFile != ""})
				}
				return printValue(format, out)
			}
			w := tabwriter.NewWriter(os.Stdout, 6, 4, 2, ' ', 0)
			fmt.Fprintf(w, "CURRENT\tNAME\tSERVER\t(%s)\n", path)
			for _, n := range ps.Names() {
				cur := ""
				if n == ps.Current {
					cur = "*"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t\n", cur, n, ps.Profiles[n].Server)
			}
			return w.Flush()
		},
	}
	use := &cobra.Command{
		Use:   "use NAME",
		Short: "Make a profile current",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := changeProfile(args[0], func(ps *node.Profiles) { ps.Current = args[0] }); err != nil {
				return err
			}
			fmt.Printf("using profile %s\n", args[0])
			return nil
		},
	}
	var server, token, tokenFile, caFile string
	set := &cobra.Command{
		Use:   "set NAME --server URL [--token T | --token-file F] [--ca-file CA.pem]",
		Short: "Create or update a profile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := node.WriteProfile(args[0], node.Profile{Server: server, Token: token, TokenFile: tokenFile, CAFile: caFile}, false)
			if err != nil {
				return err
			}
			fmt.Printf("profile %s saved in %s\n", args[0], path)
			return nil
		},
	}
	set.Flags().StringVar(&server, "server", "http://127.0.0.1:8080", "server URL")
	set.Flags().StringVar(&token, "token", "", "token (stored in the profile file, mode 0600)")
	set.Flags().StringVar(&tokenFile, "token-file", "", "file to read the token from at each use")
	set.Flags().StringVar(&caFile, "ca-file", "", "PEM certificates trusted for an https server, besides the system's")
	del := &cobra.Command{
		Use:     "delete NAME",
		Short:   "Delete a profile (its token file, if any, is left alone)",
		Example: "  eddy profile delete local-18081",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var left []string
			if err := changeProfile(args[0], func(ps *node.Profiles) {
				delete(ps.Profiles, args[0])
				if ps.Current == args[0] {
					ps.Current = ""
					left = ps.Names()
				}
			}); err != nil {
				return err
			}
			fmt.Printf("profile %s deleted\n", args[0])
			if len(left) > 0 {
				fmt.Printf("no profile is current now: eddy profile use NAME (%s)\n", strings.Join(left, ", "))
			}
			return nil
		},
	}
	outputFlag(list, new(string))
	list.Example, use.Example, set.Example = "  eddy profile list\n  eddy profile list -o json", "  eddy profile use local", "  eddy profile set edge-7 --server http://10.0.0.7:8080 --token-file edge-7.jwt"
	cmd.AddCommand(list, use, set, del)
	return cmd
}

// changeProfile applies change to the profiles if name is one of them,
// and saves them.
func changeProfile(name string, change func(ps *node.Profiles)) error {
	ps, path, err := node.LoadProfiles()
	if err != nil {
		return err
	}
	if _, ok := ps.Profiles[name]; !ok {
		return fmt.Errorf("no profile %q (have %s)", name, strings.Join(ps.Names(), ", "))
	}
	change(ps)
	return ps.Save(path)
}

func newTenantMQTT() *cobra.Command {
	cmd := &cobra.Command{Use: "mqtt", Short: "A tenant's MQTT topic mapping (docs/mqtt.md)"}
	var file string
	set := &cobra.Command{
		Use:   "set TENANT --file MAPPING.json",
		Short: `Replace the mapping: {"rules":[{"filter":"factory/+/#","topic":"lines","key":"level:1"}],"auto_create":false}`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var out struct {
				MQTT json.RawMessage `json:"mqtt"`
			}
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "PUT", "/v1/tenants/"+url.PathEscape(args[0])+"/mqtt", "application/json", body, outputOf(cmd), &out); done || err != nil {
				return err
			}
			fmt.Printf("tenant %s's MQTT mapping: %s\n", args[0], out.MQTT)
			return nil
		},
	}
	outputFlag(set, new(string))
	set.Flags().StringVar(&file, "file", "", "the mapping as JSON (required)")
	set.MarkFlagRequired("file")
	clear := &cobra.Command{
		Use:   "clear TENANT",
		Short: "Back to the default mapping (first level the topic, the rest the key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if done, err := newClient(cmd).sendOut(ctxTimeout(), "DELETE", "/v1/tenants/"+url.PathEscape(args[0])+"/mqtt", "", nil, outputOf(cmd), nil); done || err != nil {
				return err
			}
			fmt.Printf("tenant %s uses the default MQTT mapping\n", args[0])
			return nil
		},
	}
	outputFlag(clear, new(string))
	cmd.AddCommand(set, clear)
	return cmd
}
