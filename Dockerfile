# syntax=docker/dockerfile:1
# The jaeger-remote-storage server image (used by compose/ and deploy/kubernetes/).
#
#   docker build -t jaeger-remote-storage .                                   # every backend
#   docker build --build-arg FEATURES=backend-postgres -t jaeger-remote-storage:postgres .
#   docker build --build-arg GIT_REVISION="$(git rev-parse --short=12 HEAD)" …   # for --version
#
# FEATURES is a space- or comma-separated list of the server's backend features
# (backend-memory, backend-lsm, backend-postgres, backend-elasticsearch, backend-cassandra);
# the build uses --no-default-features, so a one-backend image carries no other backend's driver.
# The discard backend is always in. Needs BuildKit (the default builder since Docker 23) for the
# cache mounts below.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
ARG FEATURES="backend-memory backend-lsm backend-postgres backend-elasticsearch backend-cassandra"
# .git is not in the build context, so `--version` names the revision given here.
ARG GIT_REVISION=unknown
ENV JAEGER_REMOTE_STORAGE_GIT_REVISION=${GIT_REVISION}
WORKDIR /src
COPY . .
# The registry and the target directory live in BuildKit cache mounts, kept between builds: a
# source change recompiles the workspace's crates only, not the ~500 dependencies. A cache
# mount is not part of the image, so the binary is copied out within the same step. Symbols stay
# (panic backtraces name functions); the line tables are stripped, which takes the all-backend
# binary from ~112 MB to ~22 MB.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p remote-storage --bin jaeger-remote-storage \
        --no-default-features --features "${FEATURES}" \
    && strip --strip-debug target/release/jaeger-remote-storage \
    && install -D target/release/jaeger-remote-storage /out/jaeger-remote-storage

FROM debian:${DEBIAN_RELEASE}-slim
# The Elasticsearch and Cassandra backends verify TLS peers against the system's CA store; the
# slim image has none, so the bundle comes from the build image (no package install, no apt
# lists left in the image).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# A fixed non-root UID, so volumes and Kubernetes' runAsUser/fsGroup can name it. /data is the
# LSM backend's data directory in compose/ and deploy/kubernetes/.
RUN useradd --system --uid 10001 --no-create-home storage \
    && mkdir -p /data && chown storage /data
COPY --from=build /out/jaeger-remote-storage /usr/local/bin/jaeger-remote-storage
USER 10001
# gRPC (Jaeger's reader and writer), admin HTTP (readiness on /, Prometheus on /metrics).
EXPOSE 17271 17270
# Healthy when the admin endpoint answers 200, i.e. the backend is ready. The slim image has no
# curl or wget; bash's /dev/tcp speaks enough HTTP/1.0 for a status line. Assumes the default
# --admin-addr port (17270) in plaintext: a deployment that moves it or turns on --admin.tls.*
# overrides this check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/17270 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["jaeger-remote-storage"]
