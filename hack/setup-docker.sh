#!/usr/bin/env bash
# Makes Docker usable for the kind backend on this kind of machine. Idempotent:
# a second run only checks and returns.
#
#  1. installs Debian's docker.io (and jq, which the runtime wrapper uses, and
#     busybox-static, from which the test images are built);
#  2. installs hack/docker/ecmplb-runc as /usr/local/libexec/ecmplb-runc and
#     registers it in /etc/docker/daemon.json as the runtime "ecmplb-runc".
#     The host's capability bounding set lacks CAP_SYS_RESOURCE, so `docker
#     run --privileged` (every kind node) fails with "unable to apply caps"
#     under plain runc; the wrapper drops that capability from the
#     container's spec;
#  3. makes it dockerd's DEFAULT runtime, so it applies to EVERY container on
#     this host, not only the project's. The project's own docker calls select
#     it by name (`--runtime ecmplb-runc`), but kind, which kindconfig uses as
#     a library, creates its node containers itself and has no way to select a
#     runtime (kind v0.30.0: no runtime option in its docker provider); the
#     default is the only way to reach them. `--no-default` skips this step
#     (kind clusters then fail on this host); `--undo` reverts steps 2 and 3;
#  4. starts dockerd in the background when it is not running: there is no
#     systemd as PID 1 here, so no service manager would start it;
#  5. with --verify, runs a privileged container (and a docker exec into it)
#     from a local busybox image built with `docker import`, since no registry
#     can be reached to pull one.
#
# Usage: hack/setup-docker.sh [--verify] [--no-default]
#        hack/setup-docker.sh --undo   # unregister the runtime, remove the wrapper
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WRAPPER=/usr/local/libexec/ecmplb-runc
RUNTIME=ecmplb-runc
DAEMON_JSON=/etc/docker/daemon.json
DOCKERD_LOG=/var/log/ecmplb-dockerd.log
# The Debian client. Another `docker` earlier on PATH (a newer static client)
# would work too, but we talk to the daemon we install with its own client.
DOCKER=/usr/bin/docker
VERIFY_IMAGE=ecmplb/busybox:local

verify=false make_default=true undo=false
for arg in "$@"; do
  case $arg in
    --verify) verify=true ;;
    --no-default) make_default=false ;;
    --undo) undo=true ;;
    *) die "unknown argument $arg (usage: $0 [--verify] [--no-default] | --undo)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root"

docker_up() { "$DOCKER" info >/dev/null 2>&1; }

# reload_dockerd makes a running dockerd re-read runtimes and default-runtime
# (they are reloaded on SIGHUP).
reload_dockerd() {
  if docker_up && [ -s /var/run/docker.pid ]; then
    log "reloading dockerd configuration"
    kill -HUP "$(cat /var/run/docker.pid)"
    sleep 1
  fi
}

if $undo; then
  if [ -s "$DAEMON_JSON" ] && command -v jq >/dev/null; then
    # Only what this script added: the default runtime only if it is ours.
    new=$(jq --arg r "$RUNTIME" 'if ."default-runtime" == $r then del(."default-runtime") else . end
      | if .runtimes then .runtimes |= del(.[$r]) else . end
      | if .runtimes == {} then del(.runtimes) else . end' "$DAEMON_JSON")
    if [ "$new" != "$(jq . "$DAEMON_JSON")" ]; then
      printf '%s\n' "$new" >"$DAEMON_JSON"
      log "removed $RUNTIME from $DAEMON_JSON"
      reload_dockerd
    fi
  fi
  if docker_up; then
    rt=$("$DOCKER" info --format '{{.DefaultRuntime}}')
    [ "$rt" != "$RUNTIME" ] || die "dockerd still defaults to $RUNTIME; restart dockerd"
    # Containers created with the runtime keep using it until removed.
    users=$("$DOCKER" ps -aq --filter "label=io.x-k8s.kind.cluster" | wc -l)
    [ "$users" = 0 ] || log "note: $users kind node container(s) still exist; delete their clusters before the wrapper goes"
  fi
  if [ -e "$WRAPPER" ]; then
    rm -f "$WRAPPER"
    log "removed $WRAPPER"
  fi
  log "undone: dockerd runs containers with its own default runtime again"
  exit 0
fi

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v jq >/dev/null || missing+=(jq)
# Static busybox: the one-binary test images of --verify and of `make e2e` are
# built from it (no registry to pull an image from).
[ -x /bin/busybox ] || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

# The wrapper runtime.
if ! cmp -s "$HACK_DIR/docker/ecmplb-runc" "$WRAPPER"; then
  install -D -m 0755 "$HACK_DIR/docker/ecmplb-runc" "$WRAPPER"
  log "installed $WRAPPER"
fi

# daemon.json: keep whatever else is configured; register our runtime by
# name and, unless --no-default, make it the default.
mkdir -p "$(dirname "$DAEMON_JSON")"
[ -s "$DAEMON_JSON" ] || echo '{}' >"$DAEMON_JSON"
filter='.runtimes[$r] = {path: $w}'
if $make_default; then
  filter+=' | ."default-runtime" = $r'
elif [ "$(jq -r '."default-runtime" // ""' "$DAEMON_JSON")" = "$RUNTIME" ]; then
  filter+=' | del(."default-runtime")'
fi
new=$(jq --arg w "$WRAPPER" --arg r "$RUNTIME" "$filter" "$DAEMON_JSON")
config_changed=false
if [ "$new" != "$(jq . "$DAEMON_JSON")" ]; then
  printf '%s\n' "$new" >"$DAEMON_JSON"
  config_changed=true
  if $make_default; then
    log "registered $RUNTIME in $DAEMON_JSON as the DEFAULT runtime of every container on this host (kind cannot select a runtime; undo: $0 --undo)"
  else
    log "registered $RUNTIME in $DAEMON_JSON (not the default: kind clusters will fail on this host)"
  fi
fi

if docker_up; then
  if $config_changed; then
    reload_dockerd
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
"$DOCKER" info --format '{{range $k, $v := .Runtimes}}{{$k}} {{end}}' | grep -qw "$RUNTIME" ||
  die "dockerd does not know the runtime $RUNTIME (restart dockerd)"
if $make_default; then
  [ "$rt" = "$RUNTIME" ] || die "dockerd's default runtime is $rt, want $RUNTIME (restart dockerd)"
fi
log "docker $("$DOCKER" version --format '{{.Server.Version}}') is up, runtime $RUNTIME registered, default runtime $rt"

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
"$DOCKER" run -d --name "$name" --runtime "$RUNTIME" --privileged --network none "$VERIFY_IMAGE" sleep 60 >/dev/null
"$DOCKER" exec "$name" sh -c 'grep -q "^CapEff:" /proc/self/status' ||
  die "docker exec into a privileged container failed"
eff=$("$DOCKER" exec "$name" sh -c 'grep ^CapEff: /proc/1/status')
log "privileged container runs; docker exec works ($eff)"
