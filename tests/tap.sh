# SPDX-License-Identifier: GPL-2.0
# tests/tap.sh - TAP helpers for the shell test scripts (sourced).
#   ok NAME                  one passing test
#   nok NAME [DIAG...]       one failing test, each DIAG as a "# " line
#   tap_dstate               the /proc/PID/status files of D-state tasks
# Counters: $n (tests so far), $fail (failed so far).
n=0 fail=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
nok() {
	n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n $1"; shift
	for l in "$@"; do echo "# $l"; done
}
tap_dstate() { grep -l '^State:.*D (disk sleep)' /proc/[0-9]*/status 2>/dev/null; }
