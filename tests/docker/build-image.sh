#!/usr/bin/env bash
# Builds the rzk container image on a machine with no container registry.
#
#   tests/docker/build-image.sh            # -> image rzk:test
#
# The top-level Dockerfile is what users build (`docker build -t rzk .`: a Rust
# image compiles rzk, debian:bookworm-slim runs it). Here no image can be
# pulled and no toolchain downloaded inside a build, so this script:
#   1. makes the runtime base itself: a Debian bookworm root by debootstrap
#      (minbase, slimmed like bookworm-slim) imported as rzk-base:bookworm;
#   2. builds rzk on the host (cargo build --release) and strips it;
#   3. builds the Dockerfile's `prebuilt` target (runtime-base + that binary)
#      with RUNTIME_IMAGE=rzk-base:bookworm, from a small context holding
#      only the binary and docker/zoo.cfg.
# The runtime stage, user, ports, volume, entrypoint and config are the very
# lines users get; only where the binary comes from differs.
#
# Needs (Debian): docker.io, debootstrap; root (debootstrap, docker).
# Env: RZK_IMAGE (default rzk:test), RZK_BINARY (skip the cargo build),
#      DEBIAN_MIRROR (default: the first URIs: line of apt's debian.sources).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${RZK_DOCKER_WORK:-$repo/target/docker}
base=rzk-base:bookworm
image=${RZK_IMAGE:-rzk:test}
mirror=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$work"

if docker image inspect "$base" >/dev/null 2>&1; then
  echo "base image $base exists"
else
  command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
  rootfs=$work/rootfs
  rm -rf "$rootfs"
  echo "debootstrap bookworm (minbase) from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
  # What debian:bookworm-slim leaves out: docs, man pages, locales, apt caches.
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
         "$rootfs"/usr/share/locale/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* \
         "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
  tar -C "$rootfs" --numeric-owner -c . | docker import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  rm -rf "$rootfs"
  echo "imported $base ($(docker image inspect "$base" --format '{{.Size}}') bytes)"
fi

if [ -z "${RZK_BINARY:-}" ]; then
  (cd "$repo" && cargo build --release --bin rzk)
  RZK_BINARY=$repo/target/release/rzk
fi
ctx=$work/context
rm -rf "$ctx"
mkdir -p "$ctx/target/release" "$ctx/docker"
strip -o "$ctx/target/release/rzk" "$RZK_BINARY"
cp "$repo/docker/zoo.cfg" "$ctx/docker/zoo.cfg"
cp "$repo/Dockerfile" "$ctx/Dockerfile"
old=$(docker image inspect "$image" --format '{{.Id}}' 2>/dev/null || true)
docker build --quiet -f "$ctx/Dockerfile" --target prebuilt \
  --build-arg RUNTIME_IMAGE="$base" -t "$image" "$ctx" >/dev/null
# The image this one replaced would linger untagged; remove it if unused.
if [ -n "$old" ] && [ "$old" != "$(docker image inspect "$image" --format '{{.Id}}')" ]; then
  docker rmi "$old" >/dev/null 2>&1 || true
fi
size=$(docker image inspect "$image" --format '{{.Size}}')
echo "built $image: $size bytes ($((size / 1024 / 1024)) MiB; binary $(stat -c %s "$ctx/target/release/rzk") bytes)"
