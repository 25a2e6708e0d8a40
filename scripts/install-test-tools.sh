#!/usr/bin/env bash
# Installs the Go tools the tests read cairn's outputs with, pinned to the
# versions internal/sbomcheck names, where testenv.GoTool looks for them.
# Idempotent; `make test` and `make e2e` call it, so that a cold install
# (minutes: syft is a big module) is not timed by `go test`.
set -euo pipefail

dir="${CAIRN_TEST_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cairn-test-tools}"
tmp=""
trap '[ -z "$tmp" ] || rm -rf "$tmp"' EXIT
install() { # PACKAGE VERSION
	local name="${1##*/}" d="$dir/${1##*/}@$2"
	[ -x "$d/$name" ] && return 0
	mkdir -p "$d"
	tmp="$(mktemp -d "$d/.install-XXXXXX")"
	echo "install-test-tools: go install $1@$2" >&2
	GOBIN="$tmp" go install "$1@$2"
	mv "$tmp/$name" "$d/$name"
	rm -rf "$tmp"
	tmp=""
}

install github.com/anchore/syft/cmd/syft v1.57.2
