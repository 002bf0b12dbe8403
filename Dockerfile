# Builds the jaeger-remote-storage server image used by compose/.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p remote-storage --bin jaeger-remote-storage

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 storage && mkdir -p /data && chown storage /data
COPY --from=build /src/target/release/jaeger-remote-storage /usr/local/bin/jaeger-remote-storage
USER storage
EXPOSE 17271 17270
ENTRYPOINT ["jaeger-remote-storage"]
