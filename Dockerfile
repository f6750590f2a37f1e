# syntax=docker/dockerfile:1
# Multi-stage, static build; cross-compiles on the build platform for
# linux/amd64 and linux/arm64 (no QEMU needed):
#   docker buildx build --platform linux/amd64,linux/arm64 -t eddy .
# 32-bit ARM (linux/arm/v7) is not supported: pebble, which dragonboat
# always links, does not build there.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH VERSION=devel
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X github.com/eddy-broker/eddy/internal/buildinfo.version=$VERSION" -o /out/eddy ./cmd/eddy \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/eddy /usr/local/bin/eddy
COPY --from=build --chown=65532:65532 /out/data /var/lib/eddy
USER 65532:65532
WORKDIR /var/lib/eddy
VOLUME /var/lib/eddy
# HTTP API, MQTT, Kafka, Raft
EXPOSE 8080 1883 9092 7100
ENV EDDY_DATA_DIR=/var/lib/eddy
ENTRYPOINT ["/usr/local/bin/eddy"]
# The Raft address must be one other nodes can reach; for a single node the
# container's loopback is enough. The bootstrap admin token is written to
# /var/lib/eddy/admin.token: docker cp CONTAINER:/var/lib/eddy/admin.token .
CMD ["serve", "--http-addr", ":8080", "--raft-addr", "127.0.0.1:7100", "--mqtt-addr", ":1883"]
