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
is_ci() { case "${CI:-}" in true | TRUE | True | 1) return 0 ;; *) return 1 ;; esac; }

if command -v chromium >/dev/null; then
	say "chromium is present"
	exit 0
fi

say "installing the Debian package chromium"
as_root=()
why=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		as_root=(sudo -n)
	else
		why="not root and no passwordless sudo"
	fi
fi
if [ -z "$why" ] && ! command -v apt-get >/dev/null; then
	why="no apt-get on this system"
fi
if [ -z "$why" ]; then
	export DEBIAN_FRONTEND=noninteractive
	if "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 ||
		{ "${as_root[@]}" apt-get update -q >/dev/null &&
			"${as_root[@]}" apt-get install -y -q --no-install-recommends chromium >/dev/null; }; then
		if command -v chromium >/dev/null; then
			say "installed chromium"
			exit 0
		fi
		why="apt-get installed it, but chromium is still missing"
	else
		why="apt-get failed (see above)"
	fi
fi

msg="cannot install chromium: $why; install it yourself (Debian/Ubuntu: apt-get install chromium)"
if is_ci; then
	die "$msg"
fi
say "warning: $msg; the HTML report test will be skipped"
