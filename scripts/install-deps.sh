#!/usr/bin/env bash
# Installs what cairn's build and tests need from Debian, and nothing that is
# already there. Idempotent: `make` and `make test` call it every time.
set -euo pipefail

pkgs=(git ca-certificates xz-utils bzip2 gzip file bubblewrap skopeo umoci docker-registry runc gcc libc6-dev dnsutils diffoscope-minimal libcap2-bin)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
