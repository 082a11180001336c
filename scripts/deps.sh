#!/usr/bin/env bash
# Installs everything kmipd needs to build and test on Debian 12, and builds libraft
# 0.22.1 from Debian's signed source package into a private prefix.
#
# Idempotent: when everything is present it only checks, in well under a second.
#
#   scripts/deps.sh [--prefix DIR]     (default DIR: build/deps)
#
# Why libraft from source: Debian 12's binary libraft is 0.15, which has Raft safety
# bugs (see docs/ARCHITECTURE.md, "Replication"). The trixie source package carries
# 0.22.1; apt fetches it through a private configuration (the machine's own apt
# sources are never touched), verifying the signed index and the tarball checksums.
set -euo pipefail

RAFT_VERSION=0.22.1
RAFT_DEB_VERSION=0.22.1-1
top=$(cd "$(dirname "$0")/.." && pwd)
prefix="$top/build/deps"
while [ $# -gt 0 ]; do
	case "$1" in
	--prefix) prefix=$2; shift 2 ;;
	*) echo "deps.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

packages=(
	build-essential pkg-config autoconf automake libtool dpkg-dev ca-certificates
	libuv1-dev libssl-dev libcurl4-openssl-dev liblmdb-dev libmsgpack-dev
	libcmocka-dev liblz4-dev libjansson-dev libhttp-parser-dev libinih-dev
	python3 python3-pykmip python3-pytest python3-cryptography python3-prometheus-client
	clang libclang-rt-14-dev llvm-14 clang-format
	openssl lmdb-utils iproute2 procps psmisc xxd patch
	gnuplot-nox
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: need root to install packages (run: sudo $0)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null || apt-get update
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# The build is identified by the Debian version and the patches applied on top of it
# (scripts/patches/raft: fixes kmipd carries until they are upstream), so changing a
# patch rebuilds the library.
patches=("$top"/scripts/patches/raft/*.patch)
build_id="$RAFT_DEB_VERSION $(cat "${patches[@]}" 2>/dev/null | sha256sum | cut -c1-16)"
if [ -f "$prefix/lib/libraft.a" ] && [ "$(cat "$prefix/.raft-build" 2>/dev/null)" = "$build_id" ]; then
	exit 0
fi

echo "deps: building libraft $RAFT_VERSION from Debian's raft $RAFT_DEB_VERSION source package"
work="$prefix/src"
apt_root="$prefix/apt"
rm -rf "$work" "$apt_root"
mkdir -p "$work" "$apt_root"/{etc/sources.list.d,etc/preferences.d,lists/partial,cache/archives/partial}
cat >"$apt_root/etc/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
apt_opts=(
	-o "Dir::Etc::SourceList=$apt_root/etc/sources.list"
	-o "Dir::Etc::SourceParts=$apt_root/etc/sources.list.d"
	-o "Dir::Etc::Preferences=$apt_root/etc/preferences"
	-o "Dir::Etc::PreferencesParts=$apt_root/etc/preferences.d"
	-o "Dir::State::Lists=$apt_root/lists"
	-o "Dir::Cache=$apt_root/cache"
	-o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -q update >/dev/null
(cd "$work" && apt-get "${apt_opts[@]}" -q source --download-only "raft=$RAFT_DEB_VERSION" >/dev/null)
# apt has verified every file's SHA-256 against the signed Sources index; dpkg-source would
# only complain that the uploader's personal key is not on this machine.
(cd "$work" && dpkg-source --no-check -x "raft_$RAFT_DEB_VERSION.dsc" raft >/dev/null)

cd "$work/raft"
for patch in "${patches[@]}"; do
	[ -f "$patch" ] || continue
	echo "deps: applying $(basename "$patch")"
	patch -p1 --quiet <"$patch"
done
autoreconf -i >/dev/null 2>&1
./configure --prefix="$prefix" --enable-static --disable-shared --with-pic \
	--disable-example --disable-benchmark --disable-fixture >/dev/null
make -j"$(nproc)" >/dev/null 2>&1 || make V=1
make install >/dev/null
echo "$build_id" >"$prefix/.raft-build"
rm -rf "$work" "$apt_root"
echo "deps: libraft $RAFT_VERSION installed in $prefix"
