package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

// eddy cert makes what a cluster's TLS needs without openssl: a CA of the
// cluster, and a certificate per node it signs, for the Raft transport
// (raft_tls_*) and HTTPS (http_tls_*) alike, as cockroach cert does.
// ECDSA P-256; keys are written readable only by their owner, and nothing
// existing is overwritten.

func newCert() *cobra.Command {
	cmd := &cobra.Command{Use: "cert", Short: "Make a cluster CA and node certificates for raft_tls_* and http_tls_*"}
	var dir string
	var days int
	ca := &cobra.Command{
		Use:   "create-ca",
		Short: "Make the cluster's CA: DIR/ca.pem (give it to every node) and DIR/ca.key (keep it off the nodes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "eddy cluster CA"},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(0, 0, days),
				IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				return err
			}
			return writePair(dir, "ca", der, key)
		},
	}
	ca.Flags().IntVar(&days, "days", 3650, "validity in days")
	var hosts []string
	node := &cobra.Command{
		Use:   "create-node NAME",
		Short: "Make a node's certificate and key, DIR/NAME.pem and DIR/NAME.key, signed by DIR/ca.pem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			caCert, caKey, err := readCA(dir)
			if err != nil {
				return err
			}
			key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: args[0]},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(0, 0, days),
				KeyUsage:    x509.KeyUsageDigitalSignature,
				ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
			for _, h := range hosts {
				if ip := net.ParseIP(h); ip != nil {
					tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
				} else {
					tmpl.DNSNames = append(tmpl.DNSNames, h)
				}
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
			if err != nil {
				return err
			}
			return writePair(dir, args[0], der, key)
		},
	}
	node.Flags().IntVar(&days, "days", 825, "validity in days")
	node.Flags().StringSliceVar(&hosts, "host", []string{"127.0.0.1", "localhost"}, "names and addresses the node serves HTTPS as (its advertised HTTP host), repeatable")
	cmd.PersistentFlags().StringVar(&dir, "dir", "certs", "directory of the CA and the certificates")
	cmd.AddCommand(ca, node)
	return cmd
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writePair writes DIR/NAME.pem and DIR/NAME.key (0600), neither if
// either exists.
func writePair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Stat(f); err == nil {
			return fmt.Errorf("%s exists: not overwritten", f)
		}
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s and %s\n", certFile, keyFile)
	return nil
}

// readCA reads DIR/ca.pem and DIR/ca.key.
func readCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, nil, fmt.Errorf("%w (eddy cert create-ca --dir %s makes it)", err, dir)
	}
	kb, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		return nil, nil, err
	}
	cblock, _ := pem.Decode(cb)
	kblock, _ := pem.Decode(kb)
	if cblock == nil || kblock == nil {
		return nil, nil, errors.New("ca.pem or ca.key holds no PEM block")
	}
	cert, err := x509.ParseCertificate(cblock.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kblock.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("ca.key: %w", err)
	}
	return cert, key, nil
}
