#!/usr/bin/env bash
# Builds the runtime image localhost/ringcast:VERSION (and :latest) with
# podman from a root file system made here (deploy/image/rootfs.sh): nothing
# is pulled, so it works without a registry.
#
#   deploy/image/build.sh [BINARY]          (default build/ringcast)
#
# PODMAN_OPTS adds global podman options (e.g. "--root DIR --runroot DIR
# --storage-driver vfs" for a private store); IMAGE overrides the name.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${1:-$root/build/ringcast}"
version="$(sed -n 's/.*RINGCAST_VERSION "\(.*\)".*/\1/p' "$root/broker/config.h")"
image="${IMAGE:-localhost/ringcast}"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
"$here/rootfs.sh" "$bin" "$ctx/rootfs"
# The image's metadata (user, port, health check, stop signal, entrypoint)
# is the runtime stage's of deploy/Dockerfile, from its USER line on: one
# place for both images.
{
	echo 'FROM scratch'
	echo 'COPY rootfs/ /'
	sed -n '/^USER /,$p' "$here/../Dockerfile"
} >"$ctx/Containerfile"
grep -q '^HEALTHCHECK' "$ctx/Containerfile" || { echo "build: no USER..HEALTHCHECK in deploy/Dockerfile" >&2; exit 1; }
# --format docker: the OCI image format has no HEALTHCHECK.
# shellcheck disable=SC2086
podman ${PODMAN_OPTS:-} build --format docker --pull=never \
	-t "$image:$version" -t "$image:latest" -f "$ctx/Containerfile" "$ctx"
