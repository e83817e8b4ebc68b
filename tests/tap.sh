# SPDX-License-Identifier: GPL-2.0
# tests/tap.sh - TAP helpers for the shell test scripts (sourced).
#   ok NAME                  one passing test
#   nok NAME [DIAG...]       one failing test, each line of each DIAG as a "# " line
#   skip NAME WHY            one test that could not run (counted as skipped)
#   tap_dstate               the /proc/PID/status files of D-state tasks
#   wait_until SEC CMD...    run CMD every 0.1 s until it succeeds, for at most
#                            SEC seconds times the guest's time scale
# Counters: $n (tests so far), $fail (failed so far), $skipped (skipped so far).
n=0 fail=0 skipped=0
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
skip() { n=$((n + 1)); skipped=$((skipped + 1)); echo "ok $n $1 # SKIP $2"; }
tap_dstate() { grep -l '^State:.*D (disk sleep)' /proc/[0-9]*/status 2>/dev/null; }
# SEC times the guest's time scale, whole seconds (for timeout(1))
scaled() { awk -v s="$1" -v k="${XPMEM_TIME_SCALE:-1}" 'BEGIN { if (k < 1) k = 1; printf "%d\n", s * k }'; }

# A polling wait whose limit scales with the guest's speed
# (XPMEM_TIME_SCALE, measured at boot): no verdict of a shell test depends
# on how busy the host is.  Status: 0 once CMD succeeded, 1 if it never did.
wait_until() {
	local tries
	tries=$(awk -v s="$1" -v k="${XPMEM_TIME_SCALE:-1}" \
		'BEGIN { if (k < 1) k = 1; t = int(s * k * 10); print (t < 1 ? 1 : t) }')
	shift
	while :; do
		"$@" && return 0
		tries=$((tries - 1))
		[ $tries -gt 0 ] || return 1
		sleep 0.1
	done
}
