package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client is a client of the API this package serves: the CLI uses it, and
// so does a node forwarding a request to the node that holds a partition.
// It speaks the wire format the server writes, in one place.
type Client struct {
	// Base is the node's URL, http://host:port.
	Base string
	// Token returns the bearer token; nil or "": none is sent.
	Token func() (string, error)
	// Header is sent with every request (a node's forwards carry
	// Eddy-Forwarded).
	Header http.Header
	HC     *http.Client
}

// APIError is an error answer of the API: its HTTP status and the
// error's code and message.
type APIError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// ReachError is a request that got no answer: the node could not be
// reached, or the connection failed.
type ReachError struct {
	Base string
	Err  error
}

func (e *ReachError) Error() string { return fmt.Sprintf("cannot reach %s: %v", e.Base, e.Err) }
func (e *ReachError) Unwrap() error { return e.Err }

// Do sends a request to path (with its query) and returns the answer with
// its body read. An answer of 300 or more is an *APIError; no answer is a
// *ReachError.
func (c *Client) Do(ctx context.Context, method, path, contentType string, body []byte) (*http.Response, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, r)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.Token != nil {
		tok, err := c.Token()
		if err != nil {
			return nil, nil, err
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := c.HC.Do(req)
	if err != nil {
		return nil, nil, &ReachError{Base: c.Base, Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, &ReachError{Base: c.Base, Err: err}
	}
	if resp.StatusCode >= 300 {
		var e struct{ Error APIError }
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			e.Error.Status = resp.StatusCode
			return resp, b, &e.Error
		}
		return resp, b, &APIError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(b))}
	}
	return resp, b, nil
}

// JSON is Do, decoding a JSON answer into out (if not nil).
func (c *Client) JSON(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	_, b, err := c.Do(ctx, method, path, contentType, body)
	if err != nil {
		return err
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}
