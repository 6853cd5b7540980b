# Shared shell helpers for hack/ scripts. Source it; do not run it.

# ECMPLB_CACHE holds everything heavy that is built once and reused: Kubernetes
# and etcd binaries, tools, images. It lives outside the repository so that a
# fresh clone (CI) and the next session on the same machine reuse it.
ECMPLB_CACHE="${ECMPLB_CACHE:-/var/cache/ecmplb}"
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=versions.env
. "$HACK_DIR/versions.env"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# cache_complete DIR WANT BIN... succeeds when DIR/bin holds every BIN and the
# stamp in DIR records WANT (the versions and recipe it was built with).
cache_complete() {
  local dir=$1 want=$2; shift 2
  [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$want" ] || return 1
  local b
  for b in "$@"; do [ -x "$dir/bin/$b" ] || return 1; done
}

# module_info MODULE@VERSION prints "COMMIT DATE" of a tag as the module
# proxy recorded it, so version stamps are the same on every build.
module_info() {
  local info commit when
  info=$(go mod download -json "$1")
  commit=$(printf '%s' "$info" | sed -n 's/.*"Hash": *"\([0-9a-f]*\)".*/\1/p' | head -n1)
  when=$(printf '%s' "$info" | sed -n 's/.*"Time": *"\([^".]*\).*/\1/p' | head -n1)
  when=${when%Z}
  echo "${commit:-unknown} ${when:-1970-01-01T00:00:00}Z"
}

# build_into DIR WANT LDFLAGS NAME=PKG... compiles each main package PKG from
# the module in the current directory into DIR/bin/NAME, then writes the stamp.
# A cut-off build leaves no stamp and is redone; compiled packages are reused
# from Go's build cache.
build_into() {
  local dir=$1 want=$2 ldflags=$3; shift 3
  local tmp="$dir/bin.tmp" start spec
  rm -rf "$tmp" "$dir/.complete"; mkdir -p "$tmp" "$dir/bin"
  start=$(date +%s)
  for spec in "$@"; do
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$ldflags" -o "$tmp/${spec%%=*}" "${spec#*=}"
  done
  for spec in "$@"; do mv -f "$tmp/${spec%%=*}" "$dir/bin/"; done
  rm -rf "$tmp"
  echo "$want" >"$dir/.complete"
  log "built ${*%%=*} in $(( $(date +%s) - start ))s"
}
