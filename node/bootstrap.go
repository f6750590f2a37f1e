package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/eddy-broker/eddy/internal/logkey"

	"github.com/eddy-broker/eddy/multiraft/catalog"

	"github.com/eddy-broker/eddy"
	"github.com/eddy-broker/eddy/tenants"
)

// Secure by default: the first start creates the operator signing key,
// writes a bootstrap admin token readable only by its owner, and points a
// CLI profile at it, so local `eddy` commands work at once.
const (
	operatorKeyFile = "operator.key"
	adminTokenFile  = "admin.token"
	bootstrapTTL    = 365 * 24 * time.Hour
)

// AdminTokenPath is where the bootstrap admin token is written.
func (c *Config) AdminTokenPath() string { return filepath.Join(c.DataDir, adminTokenFile) }

// bootstrapKeys makes sure the cluster has an operator key and returns the
// signer for it.
func (n *Node) bootstrapKeys(ctx context.Context) (*tenants.Signer, error) {
	path := filepath.Join(n.cfg.DataDir, operatorKeyFile)
	priv, err := loadOrCreateKey(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(priv.Public().(ed25519.PublicKey))
	pemBytes, err := tenants.MarshalPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	op, err := n.host.EnsureOperatorKey(ctx, &catalog.OperatorKey{ID: "op-" + hex.EncodeToString(sum[:6]), PrivatePEM: string(pemBytes)})
	if err != nil {
		return nil, fmt.Errorf("register the operator key: %w", err)
	}
	clusterKey, err := tenants.ParsePrivateKey([]byte(op.PrivatePEM))
	if err != nil {
		return nil, fmt.Errorf("the cluster's operator key: %w", err)
	}
	signer := &tenants.Signer{KeyID: op.ID, Key: clusterKey, Audience: n.cfg.ClusterName, Incarnation: func(t eddy.TenantID) int64 {
		inc, _ := n.host.Incarnation(t)
		return inc.Number
	}}
	pub, err := signer.OperatorKey()
	if err != nil {
		return nil, err
	}
	n.host.SetOperatorPublic(pub)
	return signer, nil
}

func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := tenants.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	pemBytes, err := tenants.MarshalPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if err := writeSecret(path, pemBytes); err != nil {
		return nil, err
	}
	return priv, nil
}

// writeSecret writes a file only its owner can read, atomically.
func writeSecret(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// bootstrapAdmin writes the admin token and the CLI profile on the first
// start (when there is no admin.token yet).
func (n *Node) bootstrapAdmin(signer *tenants.Signer) error {
	path, err := filepath.Abs(n.cfg.AdminTokenPath())
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	tok, _, err := signer.Issue(eddy.DefaultTenant, "bootstrap-admin", []string{tenants.ScopeOperator}, bootstrapTTL)
	if err != nil {
		return err
	}
	if err := writeSecret(path, []byte(tok+"\n")); err != nil {
		return fmt.Errorf("write the admin token: %w", err)
	}
	n.log.Info("bootstrap admin token written (operator scope, valid one year)", "path", path)
	n.human("eddy: the bootstrap admin token is in %s (readable only by you)\n", path)
	prof := Profile{Server: n.HTTPURL(), TokenFile: path}
	if n.cfg.HTTPTLSCert != "" {
		if prof.CAFile, err = filepath.Abs(n.cfg.HTTPTLSCert); err != nil {
			return err
		}
	}
	name := profileName(prof.Server)
	if file, err := WriteProfile(name, prof, false); err != nil {
		n.log.Warn("could not write the CLI profile", logkey.Err, err)
	} else {
		n.log.Info("CLI profile written", "profile", name, "path", file)
		n.human("eddy: CLI profile %q written to %s\n", name, file)
	}
	return nil
}

// profileName is the CLI profile a new node writes: "local", unless
// "local" names another node (another eddy serve on this machine), whose
// profile is never overwritten: then "local-<port>".
func profileName(server string) string {
	ps, _, err := LoadProfiles()
	if err != nil {
		return "local"
	}
	if p, ok := ps.Profiles["local"]; !ok || p.Server == server {
		return "local"
	}
	_, rest, _ := strings.Cut(server, "://")
	_, port, _ := strings.Cut(rest, ":")
	return "local-" + port
}

func (c *Config) advertiseHTTP() string {
	if c.AdvertiseHTTPAddr != "" {
		return c.AdvertiseHTTPAddr
	}
	return localURLHost(c.HTTPAddr)
}

// kafkaOn reports whether the Kafka listener is on.
func (c *Config) kafkaOn() bool { return c.KafkaAddr != "" && c.KafkaAddr != "off" }

// advertiseKafka is the address Metadata names for this node; empty when
// the listener is off.
func (c *Config) advertiseKafka() string {
	switch {
	case !c.kafkaOn():
		return ""
	case c.AdvertiseKafkaAddr != "":
		return c.AdvertiseKafkaAddr
	}
	return localURLHost(c.KafkaAddr)
}

// localURLHost turns a listen address into one a local client can dial.
func localURLHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// human writes a line for a person at a terminal, besides the log; with
// log_format json the log is all there is (one format for collectors).
func (n *Node) human(format string, args ...any) {
	if n.cfg.LogFormat != "json" {
		fmt.Fprintf(os.Stderr, format, args...)
	}
}

// Human is human for the serve command's greeting.
func (n *Node) Human(format string, args ...any) { n.human(format, args...) }
