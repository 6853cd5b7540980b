#!/usr/bin/env bash
# Fails (and lists them) when an e2e run left something of ours behind: kind
# node containers of an elb-* cluster, Docker networks kindconfig created,
# their DOCKER-USER forwarding rules and bridges, the kind backend's fabric
# namespaces (elb-k*), state directories and host veths (elbt*).
#
#   e2e-leftovers.sh --list          print what is there now, one per line
#   e2e-leftovers.sh [--before F]    fail on what is there, except what F
#                                    (an earlier --list) already held: that
#                                    was left by an earlier, killed or
#                                    failed run, and is only reported
set -uo pipefail
mode=check before=/dev/null
case ${1:-} in
  --list) mode=list ;;
  --before) before=$2 ;;
esac
left=()
while read -r name cluster; do
  [[ $cluster == elb-* ]] && left+=("container $name (kind cluster $cluster)")
done < <(docker ps -a --filter label=io.x-k8s.kind.cluster --format '{{.Names}} {{.Label "io.x-k8s.kind.cluster"}}')
while read -r net; do
  [[ -n $net ]] && left+=("docker network $net")
done < <(docker network ls --filter label=io.ecmplb.owner=kindconfig --format '{{.Name}}')
while read -r rule; do
  [[ -n $rule ]] && left+=("iptables rule: $rule")
done < <(iptables -w -S DOCKER-USER 2>/dev/null | grep 'ecmplb kind network')
while read -r ns _; do
  [[ $ns == elb-k* ]] && left+=("network namespace $ns")
done < <(ip netns list)
while read -r link; do
  [[ -n $link ]] && left+=("host link $link")
done < <(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E '^(elbt|elbk-)')
for d in /run/ecmplb/fabric/k*; do
  [[ -d $d ]] && left+=("fabric state $d")
done
if [[ $mode == list ]]; then
  ((${#left[@]})) && printf '%s\n' "${left[@]}"
  exit 0
fi
new=() old=()
for l in "${left[@]}"; do
  if grep -qxF -- "$l" "$before"; then old+=("$l"); else new+=("$l"); fi
done
if ((${#old[@]})); then
  echo "e2e: there before this run (an earlier run's, not checked):" >&2
  printf '  %s\n' "${old[@]}" >&2
fi
if ((${#new[@]})); then
  echo "e2e left behind:" >&2
  printf '  %s\n' "${new[@]}" >&2
  exit 1
fi
echo "e2e: nothing left behind"
