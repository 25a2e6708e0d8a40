#!/usr/bin/env bash
# Regenerates toolchain/seed.lock: the .debs of cairn's stage-0 build root,
# the closure of the packages below on Debian bookworm amd64, as apt resolves
# it from nothing (an empty dpkg status: nothing counts as installed).
#
# apt runs under a private state in a temporary directory; its sources are
# copied from this machine's own apt configuration (deb entries of
# /etc/apt/sources.list and /etc/apt/sources.list.d/*.{list,sources}), so no
# archive host is written in the repository, and /etc/apt is never written.
#
# Usage: scripts/lock-seed.sh [OUTPUT]   (default: toolchain/seed.lock)
# The format is documented in docs/seed.md.
set -euo pipefail

roots=(gcc make libc6-dev linux-libc-dev binutils dash coreutils sed grep gawk
	tar gzip bzip2 xz-utils patch findutils diffutils)
arch=amd64
suite=bookworm

# What maintainer scripts would have made and a build needs (update-alternatives
# in gawk, gcc, cpp and debianutils). Paths are inside the merged-/usr root.
links=(
	"usr/bin/awk gawk"
	"usr/bin/nawk gawk"
	"usr/bin/cc gcc"
	"usr/bin/c89 c89-gcc"
	"usr/bin/c99 c99-gcc"
	"usr/lib/cpp ../bin/cpp"
	"usr/bin/which which.debianutils"
)

here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/toolchain/seed.lock}
etc=${CAIRN_APT_ETC:-/etc/apt}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/state/lists/partial" "$work/cache/archives/partial" \
	"$work/etc/sources.list.d" "$work/etc/preferences.d"
: >"$work/state/status"

# Copy the machine's deb sources. .list files keep only their deb lines;
# deb822 .sources files are copied whole (apt ignores their deb-src stanzas
# for binary downloads).
n=0
for f in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	grep -E '^[[:space:]]*deb[[:space:]]' "$f" >"$work/etc/sources.list.d/$n.list" || true
	n=$((n + 1))
done
for f in "$etc"/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	cp "$f" "$work/etc/sources.list.d/$n.sources"
	n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "lock-seed: no apt sources found in $etc" >&2; exit 1; }

apt_opts=(
	-o "Dir::State=$work/state" -o "Dir::State::status=$work/state/status"
	-o "Dir::Cache=$work/cache" -o "Dir::Etc::SourceList=/dev/null"
	-o "Dir::Etc::SourceParts=$work/etc/sources.list.d"
	-o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$work/etc/preferences.d"
	-o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
	-o "APT::Install-Recommends=false" -o "Acquire::ForceHash=SHA256"
	-o "Debug::NoLocking=true"
)
# The private state is root's own temporary directory: apt's _apt user
# cannot read it, so do not drop to it.
[ "$(id -u)" -ne 0 ] || apt_opts+=(-o "APT::Sandbox::User=root")

apt-get "${apt_opts[@]}" update -qq >&2
# Each line: 'URI' FILE SIZE SHA256:HEX
apt-get "${apt_opts[@]}" install --print-uris -qq -y "${roots[@]}" >"$work/uris"
[ -s "$work/uris" ] || { echo "lock-seed: apt resolved nothing" >&2; exit 1; }

{
	echo "# cairn seed lock v1: Debian $suite $arch, the closure of:"
	echo "#   ${roots[*]}"
	echo "# Regenerate with scripts/lock-seed.sh; the format is in docs/seed.md."
	echo "#"
	echo "# deb NAME VERSION ARCH SIZE SHA256 POOL-FILENAME"
	while read -r uri file size hash; do
		uri=${uri//\'/}
		case $hash in SHA256:*) ;; *) echo "lock-seed: no SHA256 for $file: $hash" >&2; exit 1 ;; esac
		# The pool file name is the URI's path from pool/ on, percent-decoded.
		pool=pool/${uri#*/pool/}
		pool=$(printf '%b' "${pool//%/\\x}")
		base=${file%.deb}
		name=${base%%_*}
		rest=${base#*_}
		version=${rest%_*}
		version=$(printf '%b' "${version//%/\\x}")
		parch=${rest##*_}
		printf 'deb %s %s %s %s %s %s\n' "$name" "$version" "$parch" "$size" "${hash#SHA256:}" "$pool"
	done <"$work/uris" | LC_ALL=C sort
	echo "#"
	echo "# symlink PATH TARGET: made after unpacking, in this order"
	for l in "${links[@]}"; do
		echo "symlink $l"
	done
} >"$out.tmp"

mv "$out.tmp" "$out"
count=$(grep -c '^deb ' "$out")
bytes=$(awk '$1 == "deb" { s += $5 } END { print s }' "$out")
echo "lock-seed: wrote $out: $count packages, $bytes bytes" >&2
