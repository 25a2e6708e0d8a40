#!/usr/bin/env bash
# Measures the staged build against a hand run, in one script so that both
# see the same machine: the cold build of musl and BusyBox by cairn versus
# the same build scripts run in one plain chroot of the same seed; the no-op
# build; the images' sizes; and cairn's own peak memory. Needs root (for the
# chroot) and a built bin/cairn. Prints a report; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${BIN:-bin/cairn}")
JOBS=${JOBS:-2}
work=$(mktemp -d /var/tmp/cairn-bench.XXXXXX)
trap 'umount -R "$work/hand-root" 2>/dev/null || true; chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
S=$work/store

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

echo "== preparing sources and seed (not timed)"
"$BIN" plan --store "$S" >/dev/null
seed=$("$BIN" plan --store "$S" --explain | awk '$1 == "seed" { print $2; exit }')
seeddir=$S/trees/sha256/${seed#sha256:}
src() { "$BIN" fetch --store "$S" "$1" | awk '{ print $3 }' | sed 's/^sha256://'; }
musl_src=$S/trees/sha256/$(src musl)
busybox_src=$S/trees/sha256/$(src busybox)
epoch=$(awk -F' *= *' '$1 == "source_date_epoch" { print $2 }' toolchain/stack.toml)

# hand RECIPE SRC [DEP_OUT]: the recipe's script in a plain chroot of the
# seed, with the same paths cairn's sandbox gives it; prints its output dir.
hand() {
	local recipe=$1 srcdir=$2 dep=${3:-} root=$work/hand-root out=$work/hand-$1-out build=$work/hand-$1-build
	mkdir -p "$root" "$out" "$build"
	unshare -m --propagation private /bin/bash -eu -c '
		root=$1 seeddir=$2 recipe=$3 srcdir=$4 dep=$5 out=$6 build=$7 epoch=$8 jobs=$9
		mount -t tmpfs tmpfs "$root"
		for e in "$seeddir"/*; do
			n=${e##*/}
			if [ -L "$e" ]; then cp -P "$e" "$root/$n"
			elif [ -d "$e" ]; then mkdir "$root/$n"; mount --bind -o ro "$e" "$root/$n"; fi
		done
		mkdir -p "$root/src/$recipe" "$root/recipe" "$root/build" "$root/out" "$root/tmp" "$root/dev" "$root/proc" "$root/deps/musl"
		mount --bind -o ro "$srcdir" "$root/src/$recipe"
		mount --bind -o ro "toolchain/recipes/$recipe" "$root/recipe"
		[ -z "$dep" ] || mount --bind -o ro "$dep" "$root/deps/musl"
		mount --bind "$build" "$root/build"; mount --bind "$out" "$root/out"
		mount -t tmpfs tmpfs "$root/tmp"; mount --rbind /dev "$root/dev"; mount -t proc proc "$root/proc"
		cflags=$(awk -F" *= *" "\$1 == \"CFLAGS\" { gsub(/\"/, \"\", \$2); print \$2 }" "toolchain/recipes/$recipe/recipe.toml")
		cd "$root/build"
		env -i PATH=/usr/bin:/bin HOME=/homeless-shelter TMPDIR=/tmp TZ=UTC LC_ALL=C \
			SOURCE_DATE_EPOCH="$epoch" CAIRN_JOBS="$jobs" ${cflags:+CFLAGS="$cflags"} \
			/usr/sbin/chroot "$root" /bin/sh -c "cd /build && exec /bin/sh -eu /recipe/build.sh" >/dev/null 2>&1
	' _ "$root" "$seeddir" "$recipe" "$srcdir" "$dep" "$out" "$build" "$epoch" "$JOBS"
	echo "$out"
}

echo "== hand run: musl then busybox in a plain chroot of the seed, -j$JOBS"
t0=$(now)
musl_out=$(hand musl "$musl_src")
hand busybox "$busybox_src" "$musl_out" >/dev/null
t1=$(now)
hand_s=$(secs "$t0" "$t1")

echo "== cairn build busybox (musl, busybox), cold, -j$JOBS"
t0=$(now)
"$BIN" build --store "$S" --out "$work/out" -j"$JOBS" busybox >/dev/null 2>"$work/build.log" &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
	[ "${hwm:-0}" -gt "$peak" ] && peak=$hwm
	sleep 0.2
done
wait "$pid"
t1=$(now)
cairn_s=$(secs "$t0" "$t1")

echo "== no-op builds of the whole stack (after one that builds tinydns and the images)"
"$BIN" build --store "$S" --out "$work/out" -j"$JOBS" >/dev/null 2>&1
noop=()
for i in $(seq 11); do
	t0=$(now); "$BIN" build --store "$S" --out "$work/out" >/dev/null 2>&1; t1=$(now)
	noop+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
done
noop_median=$(printf '%s\n' "${noop[@]}" | sort -n | sed -n 6p)

echo "== no-op builds with --verify (every stored object it uses hashed again), and cairn store verify"
median_ms() { # median of 5 runs of "$@", in ms
	local runs=()
	for i in 1 2 3 4 5; do
		t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
		runs+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')")
	done
	printf '%s\n' "${runs[@]}" | sort -n | sed -n 3p
}
verify_median=$(median_ms "$BIN" build --verify --store "$S" --out "$work/out")
store_verify_median=$(median_ms "$BIN" store verify --store "$S")

echo
echo "cold build, musl + busybox:  cairn ${cairn_s} s, hand chroot ${hand_s} s, ratio $(awk -v a="$cairn_s" -v b="$hand_s" 'BEGIN { printf "%.3f", a / b }')"
echo "cairn peak RSS during the cold build: $((peak / 1024)) MiB (VmHWM of the cairn process itself)"
echo "no-op build of the whole stack: median ${noop_median} ms of 11"
echo "no-op build with --verify: median ${verify_median} ms of 5"
echo "cairn store verify of that store ($(du -sh "$S" | cut -f1)): median ${store_verify_median} ms of 5"
echo
printf '%-10s %12s %12s %s\n' image compressed unpacked "static binaries"
for f in "$work"/out/*.rootfs.*.tar.xz; do
	name=${f##*/}; name=${name%%.rootfs.*}
	comp=$(stat -c %s "$f"); tarb=$(xz -dc "$f" | wc -c)
	mkdir -p "$work/unpacked/$name"; tar -xJf "$f" -C "$work/unpacked/$name"
	bins=$(find "$work/unpacked/$name" -type f -perm -u+x -exec sh -c 'head -c4 "$1" | grep -q ELF && printf "%s=%s " "${1##*/}" "$(stat -c %s "$1")"' _ {} \;)
	printf '%-10s %12s %12s %s\n' "$name" "$comp" "$tarb" "$bins"
done
