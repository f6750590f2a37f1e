package tenants

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/golang-jwt/jwt/v5"
)

// DeviceToken is a token a tenant signs itself with one of its registered
// keys, without calling Eddy: issuer the tenant, audience the cluster name.
type DeviceToken struct {
	Tenant   eddy.TenantID
	KeyID    string
	Subject  string
	Scopes   []string
	TTL      time.Duration
	Audience string
}

// Sign signs d with the private key in keyPEM (PKCS#8 "PRIVATE KEY", or
// SEC 1 "EC PRIVATE KEY", or PKCS#1 "RSA PRIVATE KEY"), choosing the
// algorithm from the key: EdDSA, ES256 or RS256.
func (d DeviceToken) Sign(keyPEM []byte, now time.Time) (string, time.Time, error) {
	if d.KeyID == "" || d.Audience == "" {
		return "", time.Time{}, eddy.Errorf(eddy.CodeInvalid, "a device token needs the key's kid and the cluster name as audience")
	}
	for _, s := range d.Scopes {
		if s == ScopeOperator {
			return "", time.Time{}, eddy.Errorf(eddy.CodeInvalid, "a tenant's key cannot grant operator")
		}
	}
	key, err := parsePrivate(keyPEM)
	if err != nil {
		return "", time.Time{}, err
	}
	var m jwt.SigningMethod
	switch k := key.(type) {
	case ed25519.PrivateKey:
		m = jwt.SigningMethodEdDSA
	case *ecdsa.PrivateKey:
		if k.Curve.Params().BitSize != 256 {
			return "", time.Time{}, eddy.Errorf(eddy.CodeInvalid, "an EC key must be P-256 (ES256)")
		}
		m = jwt.SigningMethodES256
	case *rsa.PrivateKey:
		if err := rsaSize(&k.PublicKey); err != nil {
			return "", time.Time{}, err
		}
		m = jwt.SigningMethodRS256
	default:
		return "", time.Time{}, eddy.Errorf(eddy.CodeInvalid, "unsupported private key %T: use Ed25519, EC P-256 or RSA", key)
	}
	c := tokenClaims{tenant: d.Tenant, issuer: string(d.Tenant), subject: d.Subject, audience: d.Audience, scopes: d.Scopes, ttl: d.TTL}
	return c.sign(m, d.KeyID, key, now)
}

func parsePrivate(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, eddy.Errorf(eddy.CodeInvalid, "the private key is not PEM")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, eddy.Errorf(eddy.CodeInvalid, "private key: %v", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, eddy.Errorf(eddy.CodeInvalid, "unsupported private key %T", key)
	}
	return s, nil
}
