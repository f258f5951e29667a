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

# crds stages the Gateway API experimental CRDs and Istio's CRDs, read from
# their Go modules at the pinned versions, into $bin/crds.
crds() {
	local gw istio
	gw=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	istio=$(go mod download -json "istio.io/istio@$ISTIO_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	# renderer/rules' corpus test reads the mesh (GAMMA) conformance manifests from this module.
	go mod download "sigs.k8s.io/gateway-api/conformance@$GATEWAY_API_VERSION"
	[ -d "$gw/config/crd/experimental" ] || { echo "gateway-api module has no config/crd/experimental" >&2; exit 1; }
	[ -f "$istio/manifests/charts/base/files/crd-all.gen.yaml" ] || { echo "istio module has no crd-all.gen.yaml" >&2; exit 1; }
	rm -rf "$bin/crds" && mkdir -p "$bin/crds"
	for f in "$gw"/config/crd/experimental/*.yaml; do
		[ "$(basename "$f")" = kustomization.yaml ] || cp "$f" "$bin/crds/gateway-api-$(basename "$f")"
	done
	cp "$istio/manifests/charts/base/files/crd-all.gen.yaml" "$bin/crds/istio-crd-all.gen.yaml"
	chmod u+w "$bin"/crds/*
	echo ">> CRDs staged in $bin/crds (gateway-api $GATEWAY_API_VERSION experimental, istio $ISTIO_VERSION)"
}

# kwok_stages copies kwok's default node and pod lifecycle stages from its
# module into $bin/kwok-stages.
kwok_stages() {
	local kwok
	kwok=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$kwok/kustomize/stage" ] || { echo "kwok module has no kustomize/stage" >&2; exit 1; }
	rm -rf "$bin/kwok-stages" && mkdir -p "$bin/kwok-stages"
	(cd "$kwok/kustomize/stage" && find . -name '*.yaml' ! -name kustomization.yaml ! -path '*/testdata/*' -exec cp --parents {} "$bin/kwok-stages/" \;)
	chmod -R u+w "$bin/kwok-stages"
	echo ">> kwok stages staged in $bin/kwok-stages"
}

all=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl pilot-discovery istioctl kwok crds kwok-stages)
tools=("$@"); [ ${#tools[@]} -gt 0 ] || tools=("${all[@]}")
for t in "${tools[@]}"; do
	case $t in
	etcd) build etcd "$ETCD_VERSION-$(sum "$here/etcd/go.sum")" etcd ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kubectl)
		build "$t" "$KUBE_VERSION-$(sum "$here/kube/go.sum")" kube "$t" ;;
	pilot-discovery) build "$t" "$ISTIO_VERSION" gobin "istio.io/istio/pilot/cmd/pilot-discovery@$ISTIO_VERSION" ;;
	istioctl) build "$t" "$ISTIO_VERSION" gobin "istio.io/istio/istioctl/cmd/istioctl@$ISTIO_VERSION" ;;
	kwok) build "$t" "$KWOK_VERSION" gobin "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" ;;
	crds) crds ;;
	kwok-stages) kwok_stages ;;
	*) echo "unknown tool $t (known: ${all[*]})" >&2; exit 2 ;;
	esac
done
echo ">> tools ready in $bin"
