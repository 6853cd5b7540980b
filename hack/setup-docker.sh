#!/usr/bin/env bash
# Makes Docker usable for the kind backend on this kind of machine. Idempotent:
# a second run only checks and returns.
#
#  1. installs Debian's docker.io (and jq, which the runtime wrapper uses);
#  2. installs hack/docker/ecmplb-runc as /usr/local/libexec/ecmplb-runc and
#     registers it in /etc/docker/daemon.json as the default runtime. The host's
#     capability bounding set lacks CAP_SYS_RESOURCE, so `docker run
#     --privileged` (every kind node) fails with "unable to apply caps" under
#     plain runc; the wrapper drops that capability from the container's spec;
#  3. starts dockerd in the background when it is not running: there is no
#     systemd as PID 1 here, so no service manager would start it;
#  4. with --verify, runs a privileged container (and a docker exec into it)
#     from a local busybox image built with `docker import`, since no registry
#     can be reached to pull one.
#
# Usage: hack/setup-docker.sh [--verify]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WRAPPER=/usr/local/libexec/ecmplb-runc
DAEMON_JSON=/etc/docker/daemon.json
DOCKERD_LOG=/var/log/ecmplb-dockerd.log
# The Debian client. Another `docker` earlier on PATH (a newer static client)
# would work too, but we talk to the daemon we install with its own client.
DOCKER=/usr/bin/docker
VERIFY_IMAGE=ecmplb/busybox:local

verify=false
[ "${1:-}" = "--verify" ] && verify=true

[ "$(id -u)" = 0 ] || die "run as root"

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v jq >/dev/null || missing+=(jq)
if $verify && [ ! -x /bin/busybox ]; then missing+=(busybox-static); fi
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

# The wrapper runtime.
if ! cmp -s "$HACK_DIR/docker/ecmplb-runc" "$WRAPPER"; then
  install -D -m 0755 "$HACK_DIR/docker/ecmplb-runc" "$WRAPPER"
  log "installed $WRAPPER"
fi

# daemon.json: keep whatever else is configured, set our runtime as default.
mkdir -p "$(dirname "$DAEMON_JSON")"
[ -s "$DAEMON_JSON" ] || echo '{}' >"$DAEMON_JSON"
new=$(jq --arg w "$WRAPPER" '.runtimes["ecmplb-runc"] = {path: $w} | ."default-runtime" = "ecmplb-runc"' "$DAEMON_JSON")
config_changed=false
if [ "$new" != "$(jq . "$DAEMON_JSON")" ]; then
  printf '%s\n' "$new" >"$DAEMON_JSON"
  config_changed=true
  log "registered ecmplb-runc as the default runtime in $DAEMON_JSON"
fi

docker_up() { "$DOCKER" info >/dev/null 2>&1; }

if docker_up; then
  if $config_changed; then
    # runtimes and default-runtime are reloaded on SIGHUP.
    log "reloading dockerd configuration"
    kill -HUP "$(cat /var/run/docker.pid)"
    sleep 1
  fi
else
  log "starting dockerd (log: $DOCKERD_LOG)"
  # setsid: dockerd must outlive this script and the shell that ran it.
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker_up && break
    sleep 0.5
  done
  docker_up || die "dockerd did not come up; see $DOCKERD_LOG"
fi
rt=$("$DOCKER" info --format '{{.DefaultRuntime}}')
[ "$rt" = ecmplb-runc ] || die "dockerd's default runtime is $rt, want ecmplb-runc (restart dockerd)"
log "docker $("$DOCKER" version --format '{{.Server.Version}}') is up, default runtime $rt"

$verify || exit 0

# A one-binary image: static busybox plus its applet links.
if ! "$DOCKER" image inspect "$VERIFY_IMAGE" >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  mkdir -p "$tmp/rootfs/bin"
  cp /bin/busybox "$tmp/rootfs/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$tmp/rootfs/bin/$a"
  done
  tar -C "$tmp/rootfs" -c . | "$DOCKER" import --change 'CMD ["/bin/sh"]' - "$VERIFY_IMAGE" >/dev/null
  rm -rf "$tmp"
  log "imported $VERIFY_IMAGE"
fi
name="ecmplb-verify-$$"
"$DOCKER" rm -f "$name" >/dev/null 2>&1 || true
trap '"$DOCKER" rm -f "$name" >/dev/null 2>&1 || true' EXIT
# --network none: the check needs no network at all.
"$DOCKER" run -d --name "$name" --privileged --network none "$VERIFY_IMAGE" sleep 60 >/dev/null
"$DOCKER" exec "$name" sh -c 'grep -q "^CapEff:" /proc/self/status' ||
  die "docker exec into a privileged container failed"
eff=$("$DOCKER" exec "$name" sh -c 'grep ^CapEff: /proc/1/status')
log "privileged container runs; docker exec works ($eff)"
