package tenants

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eddy-broker/eddy"
	"github.com/golang-jwt/jwt/v5"
)

// Algorithms a key may be registered with. HS256 is not accepted for tenant
// keys: a shared secret would let the cluster mint the tenant's tokens.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// OperatorIssuer is the iss of tokens the cluster's operator key signs.
const OperatorIssuer = "eddy"

// Claims are an Eddy token's claims.
type Claims struct {
	Tenant eddy.TenantID `json:"tenant"`
	Scopes []string      `json:"scopes"`
	// Incarnation binds an operator-signed token to one incarnation of
	// its tenant: a tenant deleted and created again under the same name
	// is a new incarnation, and the old tokens are refused.
	Incarnation int64 `json:"inc,omitempty"`
	jwt.RegisteredClaims
}

// Limits on what a token may carry, checked when one is minted so that no
// token is issued that could never be verified.
const (
	MaxTokenBytes   = 16 << 10
	MaxSubjectBytes = 256
	MaxScopes       = 64
)

// Key is a public key tokens are verified with.
type Key struct {
	ID     string        `json:"kid"`
	Tenant eddy.TenantID `json:"tenant,omitempty"` // empty: the operator key
	Alg    string        `json:"alg"`
	PEM    string        `json:"public_key_pem"`

	pub crypto.PublicKey
}

// MinRSABits and MaxRSABits bound an RS256 key's modulus. Anyone may
// send tokens naming a key (forged ones included: the signature is what
// is checked, and a refusal is not cached), and a check's cost grows
// with the square of the key's size: 30 us a forged token for a 2,048-bit
// key, 212 us for 4,096 (BenchmarkForgedToken; Ed25519 45, ES256 54), so
// a 16,384-bit key, which one tenant could register, made each such
// request cost about 3 ms of the node's CPU.
const (
	MinRSABits = 2048
	MaxRSABits = 4096
)

// rsaSize refuses an RSA key outside MinRSABits..MaxRSABits, or with a
// public exponent over 65537 (which costs a check more squarings).
func rsaSize(k *rsa.PublicKey) error {
	if n := k.N.BitLen(); n < MinRSABits || n > MaxRSABits || k.E > 65537 {
		return eddy.Errorf(eddy.CodeInvalid, "an RS256 key has %d to %d bits and an exponent of at most 65537 (this one: %d bits, exponent %d)", MinRSABits, MaxRSABits, n, k.E)
	}
	return nil
}

// ParseKey validates a PEM public key for alg and returns the Key.
func ParseKey(kid string, tenant eddy.TenantID, alg, pemText string) (*Key, error) {
	if kid == "" || len(kid) > 128 {
		return nil, eddy.Errorf(eddy.CodeInvalid, "kid must be 1 to 128 characters")
	}
	block, _ := pem.Decode([]byte(pemText))
	if block == nil {
		return nil, eddy.Errorf(eddy.CodeInvalid, "public key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, eddy.Errorf(eddy.CodeInvalid, "public key: %v (want a PKIX \"PUBLIC KEY\" PEM block)", err)
	}
	ok := false
	switch alg {
	case AlgEdDSA:
		_, ok = pub.(ed25519.PublicKey)
	case AlgES256:
		k, isEC := pub.(*ecdsa.PublicKey)
		ok = isEC && k.Curve.Params().BitSize == 256
	case AlgRS256:
		k, isRSA := pub.(*rsa.PublicKey)
		ok = isRSA && rsaSize(k) == nil
	default:
		return nil, eddy.Errorf(eddy.CodeInvalid, "alg %q: use EdDSA, ES256 or RS256", alg)
	}
	if !ok {
		if k, isRSA := pub.(*rsa.PublicKey); isRSA && alg == AlgRS256 {
			return nil, rsaSize(k)
		}
		return nil, eddy.Errorf(eddy.CodeInvalid, "the key is not a %s key (RS256 needs an RSA key of %d to %d bits, ES256 a P-256 key)", alg, MinRSABits, MaxRSABits)
	}
	return &Key{ID: kid, Tenant: tenant, Alg: alg, PEM: pemText, pub: pub}, nil
}

// Public returns the parsed public key, parsing PEM on first use.
func (k *Key) Public() (crypto.PublicKey, error) {
	if k.pub != nil {
		return k.pub, nil
	}
	p, err := ParseKey(k.ID, k.Tenant, k.Alg, k.PEM)
	if err != nil {
		return nil, err
	}
	k.pub = p.pub
	return k.pub, nil
}

// KeyLookup finds a key by the tenant that registered it (empty for the
// operator key) and its kid. Kids are unique per tenant, not in the
// cluster: two tenants may each have a key "k1".
type KeyLookup func(tenant eddy.TenantID, kid string) (*Key, bool)

// Verifier checks tokens. Audience is the cluster's name.
type Verifier struct {
	Audience string
	Keys     KeyLookup
	// Incarnation returns a tenant's incarnation, ok false when it does
	// not exist. When set, an operator-signed token of another incarnation
	// of its tenant is refused (token_revoked; see Recheck). Tokens a
	// tenant's key signed need no such check: keys go with their tenant.
	Incarnation func(eddy.TenantID) (Incarnation, bool)
	// Leeway tolerates clock skew on exp, nbf and iat. Defaults to 30s.
	Leeway time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
	// Failures bounds the refused tokens each source address may send
	// (VerifyFrom); nil limits nothing.
	Failures *FailureLimit

	cache verifiedCache
}

func authErr(code eddy.Code, format string, args ...any) *eddy.Error {
	return eddy.Errorf(code, format, args...)
}

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// Verify checks a token and returns who it speaks for. Every refusal is an
// *eddy.Error with one of the CodeToken* codes.
func (v *Verifier) Verify(token string) (*Principal, error) {
	if p, ok := v.cache.get(v, token); ok {
		return p, nil
	}
	p, err := v.verify(token)
	if err == nil {
		err = v.Recheck(p)
	}
	if err != nil {
		return nil, err
	}
	v.cache.put(token, p, v.leeway())
	return p, nil
}

// VerifyBytes is Verify of a token still in the request's buffer: a
// token the cache holds is found without a copy of it.
func (v *Verifier) VerifyBytes(token []byte) (*Principal, error) {
	if p, ok := lookup(&v.cache, v, token); ok {
		return p, nil
	}
	return v.Verify(string(token))
}

// Recheck reports (as a token error) whether a principal that verified
// earlier has lost its standing since: its token expired, its key was
// removed or replaced, or its tenant was deleted and created again.
// Long-lived sessions (MQTT connections, tails) call it to notice a
// revocation; the verified-token cache calls it on every hit.
func (v *Verifier) Recheck(p *Principal) error {
	if !p.Expires.IsZero() && !v.now().Before(p.Expires.Add(v.leeway())) {
		return authErr(eddy.CodeTokenExpired, "the token has expired")
	}
	if p.key == nil {
		return authErr(eddy.CodeTokenRevoked, "the principal was not verified from a token")
	}
	if k, ok := v.Keys(p.key.Tenant, p.key.ID); !ok || k.Alg != p.key.Alg || k.PEM != p.key.PEM {
		return authErr(eddy.CodeTokenRevoked, "the token's key %q was removed or replaced", p.key.ID)
	}
	if v.Incarnation != nil && p.key.Tenant == "" {
		if inc, ok := v.Incarnation(p.Tenant); ok && !inc.issued(p) {
			return authErr(eddy.CodeTokenRevoked, "the token was issued for an earlier tenant %s, since deleted", p.Tenant)
		}
	}
	return nil
}

// Incarnation tells one life of a tenant name from another: a number the
// controller gives each tenant it creates (0 for tenants from before
// incarnations were kept), and when it was created.
type Incarnation struct {
	Number    int64
	CreatedMs int64
}

// issued reports whether p's token was issued for this incarnation. A
// token with an inc claim names its incarnation. One without (issued
// before incarnations were kept) is taken for the incarnation that existed
// when it was issued: it must not be older than the tenant.
func (inc Incarnation) issued(p *Principal) bool {
	if p.Incarnation != 0 || inc.Number == 0 {
		return p.Incarnation == inc.Number
	}
	return !p.IssuedAt.IsZero() && p.IssuedAt.UnixMilli() >= inc.CreatedMs-1000
}

func (v *Verifier) leeway() time.Duration {
	if v.Leeway == 0 {
		return 30 * time.Second
	}
	return v.Leeway
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// verify checks a token in full: header, key, signature, claims.
func (v *Verifier) verify(token string) (*Principal, error) {
	if token == "" {
		return nil, authErr(eddy.CodeTokenMissing, "no token: send Authorization: Bearer <jwt>")
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > MaxTokenBytes {
		return nil, authErr(eddy.CodeTokenMalformed, "the token is not a JWT (header.claims.signature)")
	}
	// Strict: one encoding per token. A lenient decoder accepts other
	// spellings of the same bytes (unused trailing bits), so one token
	// would have many valid strings.
	hb, err := base64.RawURLEncoding.Strict().DecodeString(parts[0])
	var h header
	if err != nil || json.Unmarshal(hb, &h) != nil {
		return nil, authErr(eddy.CodeTokenMalformed, "the token header is not base64url JSON")
	}
	if strings.EqualFold(h.Alg, "none") {
		return nil, authErr(eddy.CodeTokenAlgNone, "unsigned tokens (alg none) are never accepted")
	}
	if h.Kid == "" {
		return nil, authErr(eddy.CodeTokenUnknownKey, "the token header has no kid")
	}
	// The issuer names whose key signed it: the operator ("eddy") or a
	// tenant. It is read before the signature is checked only to find the
	// key; the parser then requires it to match that key.
	cb, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	var iss struct {
		Iss string `json:"iss"`
	}
	if err != nil || json.Unmarshal(cb, &iss) != nil {
		return nil, authErr(eddy.CodeTokenMalformed, "the token claims are not base64url JSON")
	}
	key, err := v.key(iss.Iss, h.Kid)
	if err != nil {
		return nil, err
	}
	if h.Alg != key.Alg {
		return nil, authErr(eddy.CodeTokenAlgMismatch, "the token says alg %s, key %q is %s", h.Alg, h.Kid, key.Alg)
	}
	pub, err := key.Public()
	if err != nil {
		return nil, authErr(eddy.CodeTokenUnknownKey, "key %q is unusable: %v", h.Kid, err)
	}
	issuer := OperatorIssuer
	if key.Tenant != "" {
		issuer = string(key.Tenant)
	}
	leeway := v.leeway()
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{key.Alg}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(v.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithStrictDecoding(),
	}
	if v.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(v.Now))
	}
	var c Claims
	_, err = jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return pub, nil }, opts...)
	if err != nil {
		return nil, classify(err)
	}
	if key.Tenant != "" && c.Tenant != key.Tenant {
		return nil, authErr(eddy.CodeTokenTenantMismatch, "key %q belongs to tenant %s and cannot sign for tenant %s", key.ID, key.Tenant, c.Tenant)
	}
	if err := c.Tenant.Validate(); err != nil {
		return nil, authErr(eddy.CodeTokenMalformed, "the tenant claim: %s", eddy.AsError(err).Message)
	}
	p := &Principal{Tenant: c.Tenant, Subject: c.Subject, KeyID: key.ID, Incarnation: c.Incarnation, key: key}
	if err := p.setScopes(c.Scopes, key.Tenant == ""); err != nil {
		return nil, err
	}
	if c.ExpiresAt != nil {
		p.Expires = c.ExpiresAt.Time
	}
	if c.IssuedAt != nil {
		p.IssuedAt = c.IssuedAt.Time
	}
	return p, nil
}

// key finds the key a token names: by its issuer, the operator ("eddy")
// or a tenant, and its kid. A tenant may itself be named "eddy": its keys
// are looked up after the operator's, whose kid no tenant key may take.
func (v *Verifier) key(iss, kid string) (*Key, error) {
	if iss == "" {
		return nil, authErr(eddy.CodeTokenWrongIssuer, "the token has no iss claim")
	}
	if iss == OperatorIssuer {
		if k, ok := v.Keys("", kid); ok {
			return k, nil
		}
	}
	t := eddy.TenantID(iss)
	if t.Validate() != nil {
		return nil, authErr(eddy.CodeTokenWrongIssuer, "the token's issuer is neither %q nor a tenant", OperatorIssuer)
	}
	if k, ok := v.Keys(t, kid); ok {
		return k, nil
	}
	return nil, authErr(eddy.CodeTokenUnknownKey, "issuer %s has no key with kid %q", iss, kid)
}

// classify maps golang-jwt's errors to codes. The order matters: an expired
// token with a bad signature is a bad signature.
func classify(err error) *eddy.Error {
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return authErr(eddy.CodeTokenBadSignature, "the signature does not verify")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return authErr(eddy.CodeTokenAlgMismatch, "the token cannot be verified with its key: %v", err)
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, jwt.ErrInvalidType):
		return authErr(eddy.CodeTokenMalformed, "%v", err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return authErr(eddy.CodeTokenExpired, "the token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return authErr(eddy.CodeTokenNotYetValid, "the token is not valid yet (nbf or iat in the future)")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return authErr(eddy.CodeTokenWrongAudience, "the token is for another audience (cluster)")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return authErr(eddy.CodeTokenWrongIssuer, "the token's issuer does not match its key")
	}
	return authErr(eddy.CodeTokenMalformed, "%v", err)
}

// Signer issues tokens with the cluster's Ed25519 operator key.
type Signer struct {
	KeyID    string
	Key      ed25519.PrivateKey
	Audience string
	Now      func() time.Time
	// Incarnation, when set, gives the tenant's incarnation for the inc
	// claim, binding the token to the tenant as it exists now.
	Incarnation func(eddy.TenantID) int64
}

// MaxTTL bounds an issued token's lifetime.
const MaxTTL = 366 * 24 * time.Hour

// Issue signs a token for tenant with the scopes, valid for ttl.
func (s *Signer) Issue(tenant eddy.TenantID, subject string, scopes []string, ttl time.Duration) (string, time.Time, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	c := tokenClaims{tenant: tenant, issuer: OperatorIssuer, subject: subject, audience: s.Audience, scopes: scopes, ttl: ttl}
	if s.Incarnation != nil {
		c.incarnation = s.Incarnation(tenant)
	}
	return c.sign(jwt.SigningMethodEdDSA, s.KeyID, s.Key, now)
}

// tokenClaims are what Eddy puts in a token it signs, for the operator key
// (Signer.Issue) or a tenant's own (DeviceToken.Sign).
type tokenClaims struct {
	tenant                    eddy.TenantID
	issuer, subject, audience string
	scopes                    []string
	ttl                       time.Duration
	incarnation               int64
}

// sign validates the claims and signs them with key under kid.
func (c tokenClaims) sign(m jwt.SigningMethod, kid string, key any, now time.Time) (string, time.Time, error) {
	if err := c.tenant.Validate(); err != nil {
		return "", time.Time{}, err
	}
	if c.ttl <= 0 || c.ttl > MaxTTL {
		return "", time.Time{}, eddy.Errorf(eddy.CodeInvalid, "ttl must be between 1s and %v", MaxTTL)
	}
	if err := ValidateScopes(c.scopes); err != nil {
		return "", time.Time{}, err
	}
	if len(c.subject) > MaxSubjectBytes || len(c.scopes) > MaxScopes {
		return "", time.Time{}, eddy.Errorf(eddy.CodeInvalid, "a token holds at most %d scopes and a subject of %d bytes", MaxScopes, MaxSubjectBytes)
	}
	if err := subjectFits(c.scopes, c.subject); err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(c.ttl)
	t := jwt.NewWithClaims(m, Claims{Tenant: c.tenant, Scopes: c.scopes, Incarnation: c.incarnation, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: c.issuer, Subject: c.subject, Audience: jwt.ClaimStrings{c.audience},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
	}})
	t.Header["kid"] = kid
	signed, err := t.SignedString(key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	if len(signed) > MaxTokenBytes {
		return "", time.Time{}, eddy.Errorf(eddy.CodeInvalid, "the token would be %d bytes, over the %d a node accepts: use fewer or shorter scopes", len(signed), MaxTokenBytes)
	}
	return signed, exp, nil
}

// OperatorKey returns the operator Key of a signer.
func (s *Signer) OperatorKey() (*Key, error) {
	der, err := x509.MarshalPKIXPublicKey(s.Key.Public())
	if err != nil {
		return nil, err
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	return &Key{ID: s.KeyID, Alg: AlgEdDSA, PEM: string(p), pub: s.Key.Public()}, nil
}

// MarshalPrivateKey and ParsePrivateKey store an Ed25519 key as PKCS#8 PEM.
func MarshalPrivateKey(k ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PKCS#8 PEM Ed25519 private key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key")
	}
	return ek, nil
}
