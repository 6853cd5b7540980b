#!/usr/bin/env bash
# Builds the kind node image ecmplb/kind-node:$KUBE_VERSION offline and prints
# its name.
#
# No container registry can be reached here, so nothing is pulled: the node is
# a Debian bookworm rootfs made with debootstrap (systemd, containerd 1.6,
# runc, CNI plugins, iptables from Debian), plus the pinned Kubernetes
# binaries from hack/build-kube.sh. The images kubeadm runs (kube-apiserver,
# kube-controller-manager, kube-scheduler, kube-proxy, etcd, coredns, pause)
# are built from our own binaries (kindconfig/ociimage) and preloaded into
# containerd's k8s.io namespace under the exact names kubeadm 1.34 expects.
#
# Everything heavy is cached in $ECMPLB_CACHE/node: the debootstrapped base
# (keyed by its package list), the image tarballs and the final image, which
# carries the hash of its recipe in the label io.ecmplb.recipe; with nothing
# changed the script returns at once.
#
# Usage: hack/build-node-image.sh        (prints the image name on stdout)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

NODE_IMAGE=${ECMPLB_NODE_IMAGE:-ecmplb/kind-node:$KUBE_VERSION}
COREDNS_VERSION=v1.12.1
ETCD_IMAGE_TAG=${ETCD_VERSION#v}-0 # kindconfig.EtcdImageTag; kind tells kubeadm to use it
PAUSE_TAGS=(3.10.1 3.10) # kubeadm's default, and kind's containerd sandbox image
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${ECMPLB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the node runs besides our binaries (kind's base image needs about the
# same set): systemd as init, the container runtime, networking tools the
# kubelet and kube-proxy call, and jq for the runc wrapper.
PACKAGES=(systemd containerd runc containernetworking-plugins iptables nftables
  iproute2 conntrack ethtool socat kmod mount util-linux procps bash
  ca-certificates jq libseccomp2 pigz iputils-ping)
BASE_RECIPE=1 # bump when the way the base rootfs is made changes
NODE_DIR="$ECMPLB_CACHE/node"
FILES_DIR="$REPO_ROOT/kindconfig/node/files"

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot, containerd)"
command -v go >/dev/null || die "go is not on PATH"
"$HACK_DIR/setup-docker.sh" >&2
for tool in debootstrap containerd ctr; do
  command -v "$tool" >/dev/null || {
    log "apt-get install debootstrap containerd"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends debootstrap containerd >&2
    break
  }
done

started=$(date +%s)
kube_bin=$("$HACK_DIR/build-kube.sh" | tail -n1)
etcd_bin=$("$HACK_DIR/build-etcd.sh" | tail -n1)

# CoreDNS from its module, like the other pinned binaries.
coredns_dir="$ECMPLB_CACHE/coredns/$COREDNS_VERSION"
coredns_want="coredns=$COREDNS_VERSION recipe=1"
if ! cache_complete "$coredns_dir" "$coredns_want" coredns; then
  log "building CoreDNS $COREDNS_VERSION (cold: ~7 min)"
  rm -rf "$coredns_dir/bin.tmp" "$coredns_dir/.complete"
  mkdir -p "$coredns_dir/bin.tmp" "$coredns_dir/bin"
  (cd / && CGO_ENABLED=0 GOBIN="$coredns_dir/bin.tmp" go install -trimpath -ldflags "-s -w" \
    "github.com/coredns/coredns@$COREDNS_VERSION")
  mv -f "$coredns_dir/bin.tmp/coredns" "$coredns_dir/bin/"
  rm -rf "$coredns_dir/bin.tmp"
  echo "$coredns_want" >"$coredns_dir/.complete"
fi
coredns_bin="$coredns_dir/bin"

# The recipe: every input of the image. Same hash, same image.
hash_of() { sha256sum | cut -c1-16; }
base_key=$(printf '%s\n' "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$BASE_RECIPE" "${PACKAGES[@]}" | hash_of)
recipe=$(
  {
    echo "base=$base_key kube=$KUBE_VERSION etcd=$ETCD_VERSION/$ETCD_IMAGE_TAG coredns=$COREDNS_VERSION pause=${PAUSE_TAGS[*]}"
    cat "$ECMPLB_CACHE/kube/$KUBE_VERSION/.complete" "$ECMPLB_CACHE/etcd/$ETCD_VERSION/.complete" "$coredns_dir/.complete"
    cat "$0" "$HACK_DIR/docker/ecmplb-runc" "$HACK_DIR/versions.env"
    (cd "$REPO_ROOT" && find kindconfig/node kindconfig/ociimage kindconfig/cmd -type f | LC_ALL=C sort | xargs sha256sum)
    (cd "$REPO_ROOT" && sha256sum go.sum)
  } | hash_of
)
have=$(docker image inspect "$NODE_IMAGE" --format '{{index .Config.Labels "io.ecmplb.recipe"}}' 2>/dev/null || true)
if [ "$have" = "$recipe" ]; then
  log "$NODE_IMAGE is up to date (recipe $recipe)"
  echo "$NODE_IMAGE"
  exit 0
fi
log "building $NODE_IMAGE (recipe $recipe)"

# 1. The Debian base rootfs, cached by its package list.
base="$NODE_DIR/base-$base_key"
if [ ! -f "$base/.complete" ]; then
  log "debootstrap $DEBIAN_SUITE with ${#PACKAGES[@]} packages into $base (cold: a few minutes)"
  rm -rf "$base" "$base.tmp"
  mkdir -p "$base.tmp"
  include=$(IFS=,; echo "${PACKAGES[*]}")
  debootstrap --variant=minbase --include="$include" "$DEBIAN_SUITE" "$base.tmp/rootfs" "$DEBIAN_MIRROR" >"$base.tmp/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $base.tmp/debootstrap.log"
  r="$base.tmp/rootfs"
  # In a container systemd should start only what a node needs: drop the
  # units Debian enables by default (getty, timers, udev sockets, ...).
  rm -f "$r"/etc/systemd/system/*.wants/* "$r"/lib/systemd/system/multi-user.target.wants/* \
    "$r"/lib/systemd/system/local-fs.target.wants/* "$r"/lib/systemd/system/basic.target.wants/* \
    "$r"/lib/systemd/system/sockets.target.wants/*udev* "$r"/lib/systemd/system/sockets.target.wants/*initctl* \
    "$r"/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service
  # journald reading the host's kernel log would mix the host's messages in.
  echo "ReadKMsg=no" >>"$r/etc/systemd/journald.conf"
  ln -sf /lib/systemd/systemd "$r/sbin/init"
  chroot "$r" apt-get clean
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/log/*.log
  echo "$base_key" >"$base.tmp/rootfs/.ecmplb-base"
  mv "$base.tmp/rootfs" "$base"
  rm -rf "$base.tmp"
  touch "$base/.complete"
fi

# 2. The images kubeadm runs, as docker-archive tarballs.
images="$NODE_DIR/images-$recipe"
if [ ! -f "$images/.complete" ]; then
  rm -rf "$images"
  mkdir -p "$images/stage"
  tools="$images/tools"
  (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -trimpath -o "$tools/ociimage" ./kindconfig/cmd/ociimage &&
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tools/pause" ./kindconfig/cmd/pause)
  # stage NAME: an empty root with /tmp and /etc/passwd, as distroless has.
  stage() {
    local d="$images/stage/$1"
    mkdir -p "$d/tmp" "$d/etc" "$d/usr/local/bin"
    chmod 1777 "$d/tmp"
    echo "root:x:0:0:root:/root:/sbin/nologin" >"$d/etc/passwd"
    echo "root:x:0:" >"$d/etc/group"
    echo "$d"
  }
  # image FILE ROOT ENTRYPOINT TAG...
  image() {
    local out=$1 root=$2 ep=$3; shift 3
    local args=(-o "$images/$out.tar" -root "$root" -entrypoint "$ep")
    local t
    for t in "$@"; do args+=(-tag "$t"); done
    "$tools/ociimage" "${args[@]}"
  }
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    d=$(stage "$c"); cp "$kube_bin/$c" "$d/usr/local/bin/"
    image "$c" "$d" "/usr/local/bin/$c" "registry.k8s.io/$c:$KUBE_VERSION"
  done
  d=$(stage etcd); cp "$etcd_bin/etcd" "$etcd_bin/etcdctl" "$d/usr/local/bin/"
  image etcd "$d" /usr/local/bin/etcd "registry.k8s.io/etcd:$ETCD_IMAGE_TAG"
  d=$(stage coredns); cp "$coredns_bin/coredns" "$d/coredns"
  image coredns "$d" /coredns "registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
  d=$(stage pause); cp "$tools/pause" "$d/pause"
  image pause "$d" /pause "${PAUSE_TAGS[@]/#/registry.k8s.io/pause:}"
  # kube-proxy calls iptables(-save/-restore) and conntrack: take them and
  # their libraries from the node's Debian rootfs (nft backend, as the node).
  d=$(stage kube-proxy); cp "$kube_bin/kube-proxy" "$d/usr/local/bin/"
  mkdir -p "$d/usr/sbin"
  cp -a "$base/usr/sbin/xtables-nft-multi" "$base/usr/sbin/conntrack" "$d/usr/sbin/"
  for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -s xtables-nft-multi "$d/usr/sbin/$t"
  done
  mkdir -p "$d/usr/lib/x86_64-linux-gnu"
  cp -a "$base/usr/lib/x86_64-linux-gnu/xtables" "$d/usr/lib/x86_64-linux-gnu/"
  # The shared libraries of those binaries, resolved inside the base rootfs.
  # Debian's /lib and /lib64 are symlinks into /usr (merged /usr): copy to
  # the /usr paths and recreate the links.
  # The iptables extensions are libraries with dependencies of their own
  # (libxt_statistic needs libm).
  chroot "$base" sh -c 'ldd /usr/sbin/xtables-nft-multi /usr/sbin/conntrack /usr/lib/x86_64-linux-gnu/xtables/*.so' |
    awk '/=> \//{print $3} /^\t\/lib64/{print $1}' | sort -u |
    while read -r lib; do
      case $lib in /lib/* | /lib64/*) dst=/usr$lib ;; *) dst=$lib ;; esac
      mkdir -p "$d$(dirname "$dst")"
      cp -L "$base$lib" "$d$dst"
    done
  ln -s usr/lib "$d/lib"
  ln -s usr/lib64 "$d/lib64"
  for f in protocols services; do [ -f "$base/etc/$f" ] && cp "$base/etc/$f" "$d/etc/"; done
  # Every binary and extension must load inside the image (its own ld.so
  # lists what it cannot find).
  for f in /usr/sbin/xtables-nft-multi /usr/sbin/conntrack "$d"/usr/lib/x86_64-linux-gnu/xtables/*.so; do
    f=${f#"$d"}
    if ! out=$(chroot "$d" /usr/lib64/ld-linux-x86-64.so.2 --list "$f" 2>&1) || grep -q 'not found' <<<"$out"; then
      die "kube-proxy image: $f does not load: $(tr '\n' ' ' <<<"$out")"
    fi
  done
  image kube-proxy "$d" /usr/local/bin/kube-proxy "registry.k8s.io/kube-proxy:$KUBE_VERSION"
  rm -rf "$images/stage"
  touch "$images/.complete"
  log "image tarballs in $images ($(du -sh "$images" | cut -f1))"
fi

# 3. Assemble the node rootfs.
work="$NODE_DIR/work"
rm -rf "$work"
mkdir -p "$work"
r="$work/rootfs"
cp -a "$base" "$r"
rm -f "$r/.complete"
cp -a "$FILES_DIR/." "$r/"
chmod 0755 "$r/usr/local/bin/entrypoint"
install -D -m 0755 "$HACK_DIR/docker/ecmplb-runc" "$r/usr/local/libexec/ecmplb-runc"
for c in kubelet kubeadm kubectl; do install -m 0755 "$kube_bin/$c" "$r/usr/bin/$c"; done
# kind (and most CNI manifests) expect the plugins in /opt/cni/bin; Debian
# installs them in /usr/lib/cni.
mkdir -p "$r/opt/cni/bin" "$r/etc/cni/net.d" "$r/etc/kubernetes/manifests" "$r/kind"
for p in "$r"/usr/lib/cni/*; do ln -sf "/usr/lib/cni/$(basename "$p")" "$r/opt/cni/bin/"; done
# kind reads the Kubernetes version of a node image from /kind/version.
echo "$KUBE_VERSION" >"$r/kind/version"
# containerd's base spec for pods: the default, without the RLIMIT_NOFILE
# of 1024 it would impose on every container.
chroot "$r" ctr oci spec | jq 'del(.process.rlimits)' >"$r/etc/containerd/cri-base.json"
chroot "$r" systemctl enable containerd.service kubelet.service >/dev/null 2>&1
# systemd-binfmt would register handlers in the host kernel (binfmt_misc is global).
chroot "$r" systemctl mask systemd-binfmt.service >/dev/null 2>&1

# Preload the images: a throwaway containerd (the host's, the same Debian
# 1.6 build as the node's) with its root inside the node's /var.
state="$work/containerd-state"
sock="$work/containerd.sock"
mkdir -p "$state"
cat >"$work/containerd.toml" <<EOF
version = 2
root = "$r/var/lib/containerd"
state = "$state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
EOF
containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
cpid=$!
trap 'kill $cpid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.2; done
[ -S "$sock" ] || die "preload containerd did not start; see $work/containerd.log"
for t in "$images"/*.tar; do
  # --no-unpack: the node's containerd unpacks on first use.
  ctr -a "$sock" -n k8s.io images import --no-unpack "$t" >&2
done
ctr -a "$sock" -n k8s.io images ls -q >"$work/preloaded.txt"
# Pinned, so that image garbage collection leaves them alone where the CRI
# honours the label (containerd 1.7+); kind's kubelet configuration also
# disables image GC (imageGCHighThresholdPercent: 100).
while read -r img; do
  ctr -a "$sock" -n k8s.io images label "$img" io.cri-containerd.pinned=pinned >/dev/null
done <"$work/preloaded.txt"
kill "$cpid"; wait "$cpid" 2>/dev/null || true
trap - EXIT
for want in "registry.k8s.io/kube-apiserver:$KUBE_VERSION" "registry.k8s.io/kube-controller-manager:$KUBE_VERSION" \
  "registry.k8s.io/kube-scheduler:$KUBE_VERSION" "registry.k8s.io/kube-proxy:$KUBE_VERSION" \
  "registry.k8s.io/etcd:$ETCD_IMAGE_TAG" "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" \
  "${PAUSE_TAGS[@]/#/registry.k8s.io/pause:}"; do
  grep -qxF "$want" "$work/preloaded.txt" || die "image $want was not preloaded (have: $(tr '\n' ' ' <"$work/preloaded.txt"))"
done

# 4. Into Docker: import the rootfs, then set what `docker import` cannot
# (STOPSIGNAL) with a registry-free build FROM the imported image.
old_id=$(docker image inspect "$NODE_IMAGE" --format '{{.Id}}' 2>/dev/null || true)
raw="ecmplb/kind-node-rootfs:$recipe"
tar -C "$r" --numeric-owner -c . | docker import - "$raw" >/dev/null
DOCKER_BUILDKIT=0 docker build -q -t "$NODE_IMAGE" - >/dev/null <<EOF
FROM $raw
ENV container=docker
# systemd shuts down cleanly on SIGRTMIN+3.
STOPSIGNAL SIGRTMIN+3
LABEL io.ecmplb.recipe="$recipe" io.ecmplb.kubernetes-version="$KUBE_VERSION"
# ecmplb's clusters run on an --internal Docker network, where Docker
# publishes no ports, so kind would find no host port for the API server and
# fail exporting the kubeconfig. kind takes the endpoint from this label when
# a node carries it (Docker Desktop sets it); the value is the endpoint as
# seen inside the control-plane node, and kindconfig rewrites the kubeconfig
# to the control-plane's address on the network.
LABEL desktop.docker.io/ports/6443/tcp="127.0.0.1:6443"
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
EOF
docker rmi "$raw" >/dev/null
# The image of the previous recipe, now untagged (kept if a container uses it).
if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect "$NODE_IMAGE" --format '{{.Id}}')" ]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
rm -rf "$work"
# Old image tarballs of other recipes are no longer needed.
find "$NODE_DIR" -maxdepth 1 -name 'images-*' ! -name "images-$recipe" -exec rm -rf {} +
log "built $NODE_IMAGE in $(( $(date +%s) - started ))s ($(docker image inspect "$NODE_IMAGE" --format '{{.Size}}' | numfmt --to=iec))"
echo "$NODE_IMAGE"
