#!/usr/bin/env bash
# Fails (and lists them) when an e2e run left something of ours behind: kind
# node containers of an elb-* cluster, Docker networks kindconfig created,
# their DOCKER-USER forwarding rules and bridges, the kind backend's fabric
# namespaces (elb-k*), state directories and host veths (elbt*).
set -uo pipefail
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
if ((${#left[@]})); then
  echo "e2e left behind:" >&2
  printf '  %s\n' "${left[@]}" >&2
  exit 1
fi
echo "e2e: nothing left behind"
