# SPDX-License-Identifier: GPL-2.0
# tests/tap.sh - TAP helpers for the shell test scripts (sourced).
#   ok NAME                  one passing test
#   nok NAME [DIAG...]       one failing test, each line of each DIAG as a "# " line
#   skip NAME WHY            one test that could not run (counted as skipped)
#   tap_dstate               the /proc/PID/status files of D-state tasks
# Counters: $n (tests so far), $fail (failed so far).
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
nok() {
	local l line
	n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n $1"; shift
	# every line of every DIAG a "# " line: a multi-line DIAG (a log's
	# tail) must not put an "ok ..." line of its own into the TAP stream
	for l in "$@"; do
		while IFS= read -r line; do echo "# $line"; done <<<"$l"
	done
}
skip() { n=$((n + 1)); echo "ok $n $1 # SKIP $2"; }
tap_dstate() { grep -l '^State:.*D (disk sleep)' /proc/[0-9]*/status 2>/dev/null; }
