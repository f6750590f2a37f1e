package httpapi

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/eddy-broker/eddy/internal/testutil"
	"github.com/eddy-broker/eddy/multiraft"
)

// TestClient: the API's client against a real server: a JSON answer is
// decoded, an error answer is an *APIError with the server's code, and a
// node that is not there is a *ReachError.
func TestClient(t *testing.T) {
	e := newEnv(t, multiraft.Config{}, Config{})
	e.mustCreate("t", 1, "")
	c := &Client{Base: e.base, HC: http.DefaultClient, Token: func() (string, error) { return e.token, nil }}
	var ti struct{ Name string }
	if err := c.JSON(context.Background(), "GET", "/v1/topics/t", "", nil, &ti); err != nil || ti.Name != "t" {
		t.Fatalf("describe: %+v %v", ti, err)
	}
	var ae *APIError
	if err := c.JSON(context.Background(), "GET", "/v1/topics/nope", "", nil, nil); !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" {
		t.Fatalf("unknown topic: %v", err)
	}
	anon := &Client{Base: e.base, HC: http.DefaultClient}
	if err := anon.JSON(context.Background(), "GET", "/v1/topics", "", nil, nil); !errors.As(err, &ae) || ae.Status != 401 {
		t.Fatalf("no token: %v", err)
	}
	var re *ReachError
	gone := &Client{Base: "http://" + testutil.FreeAddr(t), HC: http.DefaultClient}
	if err := gone.JSON(context.Background(), "GET", "/v1/topics", "", nil, nil); !errors.As(err, &re) {
		t.Fatalf("nobody listening: %v", err)
	}
}
