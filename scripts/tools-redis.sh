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
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

if command -v redis-server >/dev/null; then
	say "redis-server is present ($(redis-server --version | head -n1))"
	exit 0
fi

say "installing the Debian package redis-server"
if apt_install redis-server; then
	if command -v redis-server >/dev/null; then
		say "installed redis-server"
		exit 0
	fi
	why="apt-get installed it, but redis-server is still not on PATH"
else
	why=$apt_why
fi

msg="cannot install redis-server: $why; install it yourself (Debian/Ubuntu: apt-get install redis-server) so that redis-server is on PATH"
if is_ci; then
	die "$msg"
fi
say "warning: $msg; the Redis tests will be skipped"
