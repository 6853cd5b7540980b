# Shared shell helpers for hack/ scripts. Source it; do not run it.

# ECMPLB_CACHE holds everything heavy that is built once and reused: Kubernetes
# and etcd binaries, images. It lives outside the repository so that a fresh
# clone (CI) and the next session reuse it.
ECMPLB_CACHE="${ECMPLB_CACHE:-/var/cache/ecmplb}"
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=versions.env
. "$HACK_DIR/versions.env"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
