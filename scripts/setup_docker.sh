#!/usr/bin/env bash
# Idempotent: install docker.io + debootstrap if missing, start a private dockerd
# (no iptables, no bridge: containers get network_mode=none anyway), and build the
# budgetflow base image from a cached debootstrap rootfs. Prints the DOCKER_HOST to use.
#
#   eval "$(bash scripts/setup_docker.sh --env)"   # exports DOCKER_HOST
set -euo pipefail

CACHE="${BUDGETFLOW_CACHE:-$HOME/.cache/budgetflow}"
STATE="$CACHE/docker"
SOCK="${BUDGETFLOW_DOCKER_SOCK:-/run/budgetflow-docker.sock}"
IMAGE="${BUDGETFLOW_SANDBOX_IMAGE:-budgetflow/sandbox-base:bookworm}"
ROOTFS_TAR="$CACHE/rootfs-bookworm-python3.tar"
SUITE=bookworm
# the Debian mirror apt already uses on this machine (first non-security URI of its sources)
apt_mirror() {
    { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true
      grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' || true
    } | { grep -v -- '-security' || true; } | { grep -i debian || true; } | head -n 1
}
MIRROR="${BUDGETFLOW_DEBIAN_MIRROR:-$(apt_mirror)}"
LOG="$STATE/dockerd.log"
ENV_ONLY=0
[[ "${1:-}" == "--env" ]] && ENV_ONLY=1

say() { if [[ $ENV_ONLY == 1 ]]; then echo "# $*" >&2; else echo "setup_docker: $*" >&2; fi; }

if [[ $(id -u) != 0 ]]; then
    say "must run as root (dockerd and debootstrap need it)"; exit 1
fi
mkdir -p "$STATE/data" "$STATE/exec"

# 1. packages (wait for the dpkg lock rather than failing when another install runs)
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if (( ${#missing[@]} )); then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

export DOCKER_HOST="unix://$SOCK"

# 2. dockerd (ours only: own data-root, exec-root, pidfile and socket)
if ! docker info >/dev/null 2>&1; then
    say "starting dockerd on $SOCK"
    # a stale pidfile from a killed daemon blocks start-up
    if [[ -f "$STATE/dockerd.pid" ]] && ! kill -0 "$(cat "$STATE/dockerd.pid")" 2>/dev/null; then
        rm -f "$STATE/dockerd.pid"
    fi
    nohup dockerd \
        --iptables=false --ip6tables=false --bridge=none \
        --data-root "$STATE/data" --exec-root "$STATE/exec" \
        --pidfile "$STATE/dockerd.pid" \
        --host "unix://$SOCK" \
        --containerd-namespace budgetflow --containerd-plugins-namespace budgetflow-plugins \
        >"$LOG" 2>&1 </dev/null &
    for _ in $(seq 1 100); do
        docker info >/dev/null 2>&1 && break
        sleep 0.2
    done
    if ! docker info >/dev/null 2>&1; then
        say "dockerd did not answer within 20 s; last log lines:"; tail -n 20 "$LOG" >&2; exit 1
    fi
fi

# 3. base image from a debootstrap minbase rootfs, cached as a tarball
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    if [[ ! -s "$ROOTFS_TAR" && -z "$MIRROR" ]]; then
        say "no Debian mirror found in apt's sources; set BUDGETFLOW_DEBIAN_MIRROR"; exit 1
    fi
    if [[ ! -s "$ROOTFS_TAR" ]]; then
        say "debootstrap $SUITE minbase + python3 (about 2 minutes, cached afterwards)"
        tmp=$(mktemp -d "$CACHE/rootfs.XXXXXX")
        if ! debootstrap --variant=minbase --include=python3 "$SUITE" "$tmp/rootfs" "$MIRROR" \
                >"$STATE/debootstrap.log" 2>&1; then
            say "debootstrap failed; last lines of $STATE/debootstrap.log:"; tail -n 20 "$STATE/debootstrap.log" >&2
            rm -rf "$tmp"; exit 1
        fi
        # drop apt lists and caches: smaller image, nothing the sandbox needs
        rm -rf "$tmp/rootfs/var/lib/apt/lists/"* "$tmp/rootfs/var/cache/apt/"*
        tar -C "$tmp/rootfs" -cf "$ROOTFS_TAR.partial" .
        mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
        rm -rf "$tmp"
    fi
    say "importing $ROOTFS_TAR as $IMAGE"
    docker import -c 'WORKDIR /work' -c 'CMD ["python3"]' "$ROOTFS_TAR" "$IMAGE" >/dev/null
fi

if [[ $ENV_ONLY == 1 ]]; then
    echo "export DOCKER_HOST=$DOCKER_HOST"
else
    say "ready: image $IMAGE"
    echo "DOCKER_HOST=$DOCKER_HOST"
fi
