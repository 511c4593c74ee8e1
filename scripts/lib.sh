# scripts/lib.sh: shell functions the tool scripts share (sourced, not run).

# is_ci: CI=true (or TRUE, True, 1), the mode in which a missing tool fails.
is_ci() { case "${CI:-}" in true | TRUE | True | 1) return 0 ;; *) return 1 ;; esac; }

# apt_install PKG...: install Debian packages with apt-get, as root or
# through passwordless sudo, without starting anything. The package lists
# are refreshed only when the first try fails (a fresh image has none).
# On failure it returns 1 with the reason in $apt_why.
apt_install() {
	apt_why=""
	local as_root=()
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			as_root=(sudo -n)
		else
			apt_why="not root and no passwordless sudo"
			return 1
		fi
	fi
	if ! command -v apt-get >/dev/null; then
		apt_why="no apt-get on this system"
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	if "${as_root[@]}" apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
		{ "${as_root[@]}" apt-get update -q >/dev/null &&
			"${as_root[@]}" apt-get install -y -q --no-install-recommends "$@" >/dev/null; }; then
		return 0
	fi
	apt_why="apt-get failed (see above)"
	return 1
}
