# plant-monitor as a container image: the binary built in a Rust stage, run in a slim Debian stage as
# a non-root user. The plugin folder is a volume (/plugins); the configuration is PLANT_MONITOR_*
# variables or a file (`serve -c /etc/plant-monitor/plant-monitor.toml`); the working directory,
# /var/lib/plant-monitor, holds the default SQLite database and the compiled-plugin cache (data/).
#   docker build -t plant-monitor .
#   docker run -p 8080:8080 -e PLANT_MONITOR_DATABASE_URL=postgres://… -v "$PWD/plugins/dist:/plugins" plant-monitor

# The same toolchain as CI (rust-version 1.95), the same command as the README's release build.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p plant-monitor --bin plant-monitor \
    && cp target/release/plant-monitor /plant-monitor

FROM debian:bookworm-slim
# ca-certificates: HTTPS sinks and PostgreSQL over TLS; curl: the HEALTHCHECK below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin plant-monitor \
    && mkdir -p /plugins /var/lib/plant-monitor \
    && chown plant-monitor /var/lib/plant-monitor
COPY --from=build /plant-monitor /usr/local/bin/plant-monitor
USER 10001
WORKDIR /var/lib/plant-monitor
ENV PLANT_MONITOR_LISTEN=0.0.0.0:8080 \
    PLANT_MONITOR_PLUGINS_DIR=/plugins
VOLUME ["/plugins", "/var/lib/plant-monitor"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD curl -fsS http://127.0.0.1:8080/healthz >/dev/null || exit 1
ENTRYPOINT ["plant-monitor"]
CMD ["serve"]
