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

# check_space DIR GIB: warn when DIR has less than GIB GiB free.
check_space() {
	local avail
	avail=$(df -Pk "$1" | awk 'NR == 2 { print int($4 / 1048576) }')
	if [ "$avail" -lt "$2" ]; then
		echo "WARNING: $avail GiB free in $1; the test suite needs about $2 GiB" >&2
	fi
}

# run_suite DIR NAME [VAR=VALUE...]: `make test` of the build in DIR with
# those variables set, pytest in $scratch/NAME, all it prints into
# DIR/test-suite.log.
run_suite() {
	# --durations: the slowest tests at the end of each log, for keeping the
	# suite within CI's time.
	env "${@:3}" make -C "$1" -s test PYTEST_ARGS="--basetemp=$scratch/$2 --durations=25" \
		>"$1/test-suite.log" 2>&1
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
	# Each build's pytest run gets its own scratch directory, removed at the
	# end (a passed test's directory goes at once, tests/conftest.py): the
	# images of a run once filled the CI disk.
	scratch=$(mktemp -d "${TMPDIR:-/tmp}/extcrypt-test.XXXXXX")
	trap 'rm -rf "$scratch"' EXIT
	check_space "$scratch" 6
	# The two builds' suites run side by side, one per CPU, each into its own
	# log, shown when both are done; the exit status is bad if either failed.
	echo "=== test suites: normal and ASan+UBSan builds, side by side ==="
	rc=0
	run_suite build normal &
	pid_normal=$!
	run_suite build-asan asan EXTCRYPT_SANITIZED=1 &
	pid_asan=$!
	wait "$pid_normal" || rc=1
	wait "$pid_asan" || rc=1
	echo "=== test suite: normal build ==="
	cat build/test-suite.log
	echo "=== test suite: ASan+UBSan build ==="
	cat build-asan/test-suite.log
	exit "$rc"
	;;
*)
	echo "usage: $0 demo|test|build" >&2
	exit 2
	;;
esac
