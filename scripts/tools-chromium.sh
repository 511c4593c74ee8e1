#!/usr/bin/env bash
# scripts/tools-chromium.sh (part of make tools): install Debian's chromium,
# which the `keyward scan` HTML report test opens headless, when missing.
#
# From the Debian package chromium via apt-get (as root, or through sudo).
# If it cannot be installed, this fails when CI=true and only warns
# otherwise (the test is then skipped outside CI).
set -euo pipefail

say() { printf 'tools-chromium: %s\n' "$*"; }
die() { printf 'tools-chromium: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

if command -v chromium >/dev/null; then
	say "chromium is present"
	exit 0
fi

say "installing the Debian package chromium"
if apt_install chromium; then
	if command -v chromium >/dev/null; then
		say "installed chromium"
		exit 0
	fi
	why="apt-get installed it, but chromium is still missing"
else
	why=$apt_why
fi

msg="cannot install chromium: $why; install it yourself (Debian/Ubuntu: apt-get install chromium)"
if is_ci; then
	die "$msg"
fi
say "warning: $msg; the HTML report test will be skipped"
