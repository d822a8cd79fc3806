#
# The rzk image: one binary (`rzk server`, `rzk operator`, `rzk cli`, ...).
#
#   docker build -t rzk .
#   docker run -d -p 2181:2181 -p 7000:7000 -p 8080:8080 -v rzk-data:/data rzk
#
# Stages:
#   runtime-base  the minimal runtime: Debian slim, a non-root user, /data, /conf/zoo.cfg
#   prebuilt      runtime-base + a binary built outside Docker (target/release/rzk in the
#                 build context); used by tests/docker/build-image.sh on machines that
#                 cannot pull a Rust image
#   build         compiles rzk on the official Rust image
#   runtime       (default) runtime-base + the binary from `build`
#
# The base images are build arguments so an offline machine can point them at
# images it made itself (tests/docker/build-image.sh does, with debootstrap).

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUNTIME_IMAGE} AS runtime-base
# A fixed uid/gid so volumes and Kubernetes securityContext (runAsUser/fsGroup 1000) agree.
RUN groupadd --system --gid 1000 rzk \
 && useradd --system --uid 1000 --gid rzk --home-dir /data --no-create-home --shell /usr/sbin/nologin rzk \
 && mkdir -p /data /conf \
 && chown rzk:rzk /data
COPY docker/zoo.cfg /conf/zoo.cfg
# client, quorum, election, Prometheus /metrics, admin API and health probes
EXPOSE 2181 2888 3888 7000 8080
VOLUME ["/data"]
WORKDIR /data
USER rzk:rzk
ENTRYPOINT ["/usr/local/bin/rzk"]
CMD ["server", "/conf/zoo.cfg"]

FROM runtime-base AS prebuilt
COPY target/release/rzk /usr/local/bin/rzk

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rzk \
 && strip -o /rzk target/release/rzk

FROM runtime-base AS runtime
COPY --from=build /rzk /usr/local/bin/rzk
