#!/usr/bin/env bash
# Installs the Debian packages ecmplb's tests and lab need on this machine, when
# they are missing. Idempotent and quick when everything is there.
#
#   frr      a real router (bgpd, bfdd) to test interop against
#   gobgpd   the standard `gobgp` CLI, to inspect the fabric's ToR routers
#   iproute2 ip netns / veth / bridge for the lab's namespaces
#   nftables drops a node's packets to simulate a hard failure
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need=()
[ -x /usr/lib/frr/bgpd ] && [ -x /usr/lib/frr/bfdd ] || need+=(frr)
command -v gobgp >/dev/null || need+=(gobgpd)
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
[ ${#need[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || die "installing ${need[*]} needs root"

log "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# The host has no init system to speak of; keep package scripts from starting
# FRR or gobgpd daemons in the host's network namespace. Tests start their own
# daemons inside namespaces they create.
policy=/usr/sbin/policy-rc.d
restore=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; restore=1
fi
trap '[ $restore = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
log "installed ${need[*]}"
