package wasm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eddy-broker/eddy"
)

// guests are the test modules in testdata/guests, built once with the
// standard toolchain as a tenant would build them.
var guests = map[string][]byte{}

// cacheDir is one compilation cache for the package's tests, so each guest
// compiles once (it matters under -race, where compiling is slow).
var cacheDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eddy-guests")
	if err != nil {
		panic(err)
	}
	cacheDir = filepath.Join(dir, "cache")
	ents, _ := os.ReadDir("testdata/guests")
	for _, e := range ents {
		out := filepath.Join(dir, e.Name()+".wasm")
		cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/guests/"+e.Name())
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build guest %s: %v\n%s", e.Name(), err, b)
			os.Exit(1)
		}
		guests[e.Name()], _ = os.ReadFile(out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newEngine(t *testing.T, l Limits) *Engine {
	t.Helper()
	e, err := NewEngine(context.Background(), cacheDir, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func instance(t *testing.T, e *Engine, guest string, config string) *Instance {
	t.Helper()
	m, err := e.Compile(context.Background(), guests[guest])
	if err != nil {
		t.Fatalf("compile %s: %v", guest, err)
	}
	in, err := m.Instantiate(context.Background(), []byte(config))
	if err != nil {
		t.Fatalf("instantiate %s: %v", guest, err)
	}
	t.Cleanup(in.Close)
	return in
}

func records(n int) []eddy.Record {
	recs := make([]eddy.Record, n)
	for i := range recs {
		recs[i] = eddy.Record{Timestamp: int64(i), Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprintf(`{"t":%d}`, i))}
	}
	return recs
}

func TestKeepAndEnrich(t *testing.T) {
	if testing.Short() {
		t.Skip("single-goroutine; runs in make unit (wazero is too slow under -race -short)")
	}
	e := newEngine(t, Limits{})
	keep := instance(t, e, "keep", "")
	out, err := keep.Process(context.Background(), records(100))
	if err != nil || len(out) != 100 || string(out[42].Value) != `{"t":42}` {
		t.Fatalf("keep: %d records, %v", len(out), err)
	}
	enrich := instance(t, e, "enrich", `{"site":"edge-01"}`)
	for round := 0; round < 3; round++ { // the instance is reused between batches
		out, err = enrich.Process(context.Background(), records(64))
		if err != nil || len(out) != 64 {
			t.Fatalf("enrich: %d records, %v", len(out), err)
		}
		r := out[7]
		if string(r.Value) != `{"t":7,"site":"edge-01"}` || string(r.Key) != "k7" || r.Timestamp != 7 ||
			len(r.Headers) != 1 || r.Headers[0].Key != "site" || string(r.Headers[0].Value) != "edge-01" {
			t.Fatalf("enriched record: %+v", r)
		}
	}
	// A user error fails the batch with the guest's message.
	_, err = enrich.Process(context.Background(), []eddy.Record{{Value: []byte("not json")}})
	if !errors.Is(err, ErrGuest) || !strings.Contains(err.Error(), "not a JSON object") || !enrich.Broken() {
		t.Fatalf("user error: %v (broken %v)", err, enrich.Broken())
	}
}

// TestHostileModules: each misbehaving module fails its batch with the
// right kind of error within the deadline, its instance is discarded, and
// the engine keeps serving other modules. The loop meets a short
// deadline; the others a long one, so that on a busy machine the bomb
// still reaches its memory limit first (it took 0.7-1.8 s on this machine,
// and a 300 ms deadline stopped it first).
func TestHostileModules(t *testing.T) {
	if testing.Short() {
		t.Skip("single-goroutine; runs in make unit (wazero is too slow under -race -short)")
	}
	short := newEngine(t, Limits{Deadline: 300 * time.Millisecond, MemoryPages: 512})
	long := newEngine(t, Limits{Deadline: 20 * time.Second, MemoryPages: 512})
	for _, tc := range []struct {
		guest string
		e     *Engine
		want  error
	}{
		{"loop", short, ErrTimeout},
		{"bomb", long, ErrMemory},
		{"panic", long, ErrTrap},
		{"badptr", long, ErrBadOutput},
		{"flood", long, ErrBadOutput},
	} {
		t.Run(tc.guest, func(t *testing.T) {
			e := tc.e
			in := instance(t, e, tc.guest, "")
			start := time.Now()
			out, err := in.Process(context.Background(), records(4))
			took := time.Since(start)
			if !errors.Is(err, tc.want) || out != nil {
				t.Fatalf("got %d records, %v; want %v", len(out), err, tc.want)
			}
			if took > 15*time.Second {
				t.Fatalf("took %v", took)
			}
			if !in.Broken() {
				t.Fatal("the failed instance is still usable")
			}
			if _, err := in.Process(context.Background(), records(1)); err == nil {
				t.Fatal("a broken instance ran again")
			}
			t.Logf("%s: %v after %v", tc.guest, err, took.Round(time.Millisecond))
			// The engine still runs a well-behaved module.
			if out, err := instance(t, e, "keep", "").Process(context.Background(), records(3)); err != nil || len(out) != 3 {
				t.Fatalf("keep after %s: %v", tc.guest, err)
			}
		})
	}
}

func TestModulesRefusedAtUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("single-goroutine; runs in make unit (wazero is too slow under -race -short)")
	}
	e := newEngine(t, Limits{MaxModuleBytes: 4 << 20})
	for name, tc := range map[string]struct {
		bin  []byte
		want string
	}{
		"not wasm":         {[]byte("#!/bin/sh\necho hi\n"), "not a WebAssembly binary"},
		"truncated":        {guests["keep"][:1000], "invalid transform module"},
		"forbidden import": {guests["forbidden"], "wasi_snapshot_preview1.path_open"},
		"too large":        {append(append([]byte(nil), guests["keep"]...), make([]byte, 4<<20)...), "over the 4194304-byte limit"},
	} {
		_, err := e.Compile(context.Background(), tc.bin)
		if !errors.Is(err, ErrInvalidModule) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (want %q)", name, err, tc.want)
		}
	}
	// A memory limit below what the module declares is refused too.
	small := newEngine(t, Limits{MemoryPages: 16})
	if _, err := small.Compile(context.Background(), guests["keep"]); !errors.Is(err, ErrInvalidModule) {
		t.Errorf("memory limit below the module's minimum: %v", err)
	}
}
