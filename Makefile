# `make test` is the README's test command; .ci/run calls it.
GO ?= go
# Packages with concurrency run again under the race detector.
RACE_PKGS = ./multiraft/... ./bridges/... ./node/... ./tenants/... ./wasm/... ./internal/... ./ingest/... ./consume/... ./series/... ./links/...

.PHONY: test fmt vet unit race cross e2e build fuzz soak-hostile screenshots

test: fmt vet unit race cross e2e

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi; echo "gofmt: clean"

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /e2e)

race:
	$(GO) test -count=1 -race -short $(RACE_PKGS)

# Gateways run linux/arm64: the static binary must build for it.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o /dev/null ./cmd/eddy
	@echo "cross: linux/arm64 builds"
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./wasm/guest ./examples/transforms/...
	@echo "cross: the transform SDK and the examples build for wasip1"

# End-to-end: the real binary, kill -9 mid-stream, restart, nothing lost.
e2e:
	$(GO) test -count=1 -timeout 30m -v ./e2e/...

# The version is git's description of the checkout, stamped into
# internal/buildinfo (eddy version, eddy_build_info); the commit comes
# from Go's VCS stamp.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=auto -ldflags="-s -w -X github.com/eddy-broker/eddy/internal/buildinfo.version=$$(git describe --tags --always --dirty 2>/dev/null || echo devel)" -o eddy ./cmd/eddy

# Longer fuzzing than CI does (CI runs the committed corpus as tests).
fuzz:
	$(GO) test -run XXX -fuzz FuzzDecodeBatch -fuzztime 60s ./multiraft/segment
	$(GO) test -run XXX -fuzz FuzzRecover -fuzztime 60s ./multiraft/segment
	$(GO) test -run XXX -fuzz FuzzProduceJSON -fuzztime 60s ./bridges/http
	$(GO) test -run XXX -fuzz FuzzRecordJSON -fuzztime 60s ./bridges/http
	$(GO) test -run XXX -fuzz FuzzRequest -fuzztime 60s ./bridges/kafka
	$(GO) test -run XXX -fuzz FuzzVerify -fuzztime 60s ./tenants
	$(GO) test -run XXX -fuzz FuzzDecodeOutput -fuzztime 60s ./wasm

# The hostile soak: attacks together against a 3-node cluster while two
# well-behaved tenants produce and consume (not in CI; about 5 minutes).
soak-hostile:
	timeout 600 scripts/soak-hostile.sh

# The console's pages at 1280x800, from TestConsole in a real Chromium,
# into docs/console/ (committed; docs/console.md shows them).
screenshots:
	EDDY_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run 'TestConsole$$' ./e2e
