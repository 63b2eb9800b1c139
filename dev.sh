#!/usr/bin/env bash
# Developer entry point: install missing Debian packages, build, then run the
# demo or the whole test suite.  Works as root on a fresh Debian 12 machine.
#
#   ./dev.sh demo    build and run the demo on the built-in sample tree
#   ./dev.sh test    build (normal + ASan/UBSan) and run the whole suite on both
#   ./dev.sh build   only install and build
set -euo pipefail
cd "$(dirname "$0")"
top=$PWD

# Build and test dependencies (Debian package names).
PACKAGES=(
	build-essential autoconf automake pkg-config
	libssl-dev uuid-dev zlib1g-dev libzstd-dev liblzo2-dev libxxhash-dev
	libb2-dev libisal-dev libjson-c-dev
	btrfs-progs e2fsprogs xfsprogs util-linux xz-utils time
	python3 python3-pytest python3-cryptography python3-xxhash python3-crcmod
	python3-docutils man-db
)

install_missing() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "Installing: ${missing[*]}"
	if [ "$(id -u)" -ne 0 ]; then
		echo "ERROR: missing packages (${missing[*]}); run as root or install them" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build DIR [configure options...]
build_in() {
	local dir=$1
	shift
	[ -x configure ] && [ configure -nt configure.ac ] || ./autogen.sh >/dev/null
	mkdir -p "$dir"
	local stamp="$dir/.configured-with"
	if [ ! -f "$dir/Makefile" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$*" ] ||
	   [ "$dir/Makefile" -ot Makefile.in ]; then
		(cd "$dir" && "$top/configure" -q "$@")
		echo "$*" >"$stamp"
	fi
	make -C "$dir" -s -j"$(nproc)" all tests/unit/unit-tests
}

cmd=${1:-}
case "$cmd" in
build)
	install_missing
	build_in build
	;;
demo)
	install_missing
	build_in build
	exec sample/demo.sh "$top/build/btrfs-extcrypt"
	;;
test)
	install_missing
	build_in build --enable-fault-injection
	build_in build-asan --enable-sanitizers --enable-fault-injection
	# The dump-tree/dump-super reference (tests skip without it).
	if progs614=$(tools/progs-6.14); then
		export EXTCRYPT_PROGS614=$progs614
	else
		echo "WARNING: no btrfs-progs 6.14; the dump-tree/dump-super comparisons will skip" >&2
	fi
	echo "=== test suite: normal build ==="
	make -C build -s test
	echo "=== test suite: ASan+UBSan build ==="
	EXTCRYPT_SANITIZED=1 make -C build-asan -s test
	;;
*)
	echo "usage: $0 demo|test|build" >&2
	exit 2
	;;
esac
