#!/usr/bin/env bash
# Installs redis-server, which the tests of keyward serve's shared cache
# start on 127.0.0.1 (internal/testenv StartRedis), from Debian's
# redis-server package via apt-get when it is missing (as root, or through
# sudo). Idempotent: nothing happens when redis-server is on PATH. If it
# cannot be installed, this fails when CI=true and only warns otherwise
# (the Redis tests then skip outside CI).
set -euo pipefail

say() { printf 'tools-redis: %s\n' "$*"; }
die() { printf 'tools-redis: %s\n' "$*" >&2; exit 1; }
is_ci() { case "${CI:-}" in true | TRUE | True | 1) return 0 ;; *) return 1 ;; esac; }

if command -v redis-server >/dev/null; then
	say "redis-server is present ($(redis-server --version | head -n1))"
	exit 0
fi

say "installing the Debian package redis-server"
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
	# Try without refreshing the package lists first; a fresh image has none.
	# The package's service is never started here: tests start their own.
	if "${as_root[@]}" apt-get install -y -q --no-install-recommends redis-server >/dev/null 2>&1 ||
		{ "${as_root[@]}" apt-get update -q >/dev/null &&
			"${as_root[@]}" apt-get install -y -q --no-install-recommends redis-server >/dev/null; }; then
		if command -v redis-server >/dev/null; then
			say "installed redis-server"
			exit 0
		fi
		why="apt-get installed it, but redis-server is still not on PATH"
	else
		why="apt-get failed (see above)"
	fi
fi

msg="cannot install redis-server: $why; install it yourself (Debian/Ubuntu: apt-get install redis-server) so that redis-server is on PATH"
if is_ci; then
	die "$msg"
fi
say "warning: $msg; the Redis tests will be skipped"
