# The README's test command is `make test`; .ci/run calls it.
GO ?= go
# Packages with concurrency run under the race detector.
RACE_PKGS = ./multiraft/... ./bridges/... ./node/...

.PHONY: test fmt vet unit race cross e2e build

test: fmt vet unit race cross e2e

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 ./...

race:
	$(GO) test -count=1 -race -short $$($(GO) list $(RACE_PKGS) 2>/dev/null)

cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags='-s -w' -o /dev/null ./cmd/eddy 2>/dev/null || \
	  (test ! -d cmd/eddy && echo "cmd/eddy not yet present")

e2e:
	@test ! -d e2e || $(GO) test -count=1 -v ./e2e/...

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o eddy ./cmd/eddy
