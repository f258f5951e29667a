#!/usr/bin/env bash
# build.sh compiles the local control plane from Go modules (the module proxy is
# the only source) and links the binaries into $BIN (default: <repo>/bin).
#
# Built binaries are kept in a cache outside the clone, keyed by tool, version
# and Go version, so a fresh clone on a warm machine only makes symlinks:
#   ${MESHCD_TOOLS_CACHE:-$HOME/.cache/meshcd/tools}/<tool>-<version>-<go>/<tool>
#
# Usage: hack/tools/build.sh [tool...]   (default: all tools)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${BIN:-$root/bin}
cache=${MESHCD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshcd/tools}
# shellcheck source=versions.env
source "$here/versions.env"
gover=$(go env GOVERSION)
mkdir -p "$bin" "$cache"

kube_minor=${KUBE_VERSION#v1.}; kube_minor=${kube_minor%%.*}
kube_ldflags="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kube_minor"

# sum FILE prints a short content hash, so editing a tools module rebuilds it.
sum() { sha256sum "$1" | cut -c1-12; }

# build NAME KEY CMD... runs CMD with $out set to the binary's path, unless
# the cache already holds it, and links it into $bin.
build() {
	local name=$1 key=$2; shift 2
	local dir="$cache/$name-$key-$gover"
	if [ ! -x "$dir/$name" ]; then
		local start=$SECONDS
		echo ">> building $name ($key) into $dir; a cold build takes minutes, a warm Go cache about one"
		rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
		out="$dir.tmp/$name" "$@"
		rm -rf "$dir" && mv "$dir.tmp" "$dir"
		echo ">> built $name in $((SECONDS - start))s"
	fi
	ln -sfn "$dir/$name" "$bin/$name"
}

kube() { (cd "$here/kube" && go build -ldflags "$kube_ldflags" -o "$out" "k8s.io/kubernetes/cmd/$1"); }
etcd() { (cd "$here/etcd" && go build -o "$out" .); }
gobin() { local tmp; tmp=$(dirname "$out"); GOBIN="$tmp" go install "$1"; }

all=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl pilot-discovery istioctl kwok)
tools=("$@"); [ ${#tools[@]} -gt 0 ] || tools=("${all[@]}")
for t in "${tools[@]}"; do
	case $t in
	etcd) build etcd "$ETCD_VERSION-$(sum "$here/etcd/go.sum")" etcd ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
		build "$t" "$KUBE_VERSION-$(sum "$here/kube/go.sum")" kube "$t" ;;
	pilot-discovery) build "$t" "$ISTIO_VERSION" gobin "istio.io/istio/pilot/cmd/pilot-discovery@$ISTIO_VERSION" ;;
	istioctl) build "$t" "$ISTIO_VERSION" gobin "istio.io/istio/istioctl/cmd/istioctl@$ISTIO_VERSION" ;;
	kwok) build "$t" "$KWOK_VERSION" gobin "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" ;;
	*) echo "unknown tool $t (known: ${all[*]})" >&2; exit 2 ;;
	esac
done
echo ">> tools ready in $bin"
