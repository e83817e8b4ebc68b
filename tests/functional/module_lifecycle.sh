#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Module lifecycle, as TAP: unload refused while /dev/xpmem is in use or an
# attachment is mapped, clean unload afterwards, and reload.
# Needs root and the module loaded (the guest loads it).
set -u
ko=${XPMEM_KO:?XPMEM_KO must name the xpmem.ko that is loaded}
. "$(dirname "$0")/../tap.sh"

echo "TAP version 13"
echo "1..7"

# 1: refused while a process holds /dev/xpmem open
exec 9</dev/xpmem
if rmmod xpmem 2>/dev/null; then
	nok unload_refused_while_device_open "rmmod succeeded with /dev/xpmem open"
	insmod "$ko"
else
	ok unload_refused_while_device_open
fi
exec 9<&-

# 2: refused while an attachment is mapped (device closed by then)
holder=$(dirname "$0")/../../build/tests/functional/xpmem_hold_attachment
rm -f /tmp/xpmem-holding
"$holder" & hpid=$!
wait_until 10 test -e /tmp/xpmem-holding
if [ ! -e /tmp/xpmem-holding ]; then
	nok unload_refused_while_attachment_mapped "the holder never got its attachment"
elif rmmod xpmem 2>/dev/null; then
	nok unload_refused_while_attachment_mapped "rmmod succeeded with a live attachment"
	insmod "$ko"
else
	ok unload_refused_while_attachment_mapped
fi
kill "$hpid" 2>/dev/null
wait "$hpid" 2>/dev/null
rm -f /tmp/xpmem-holding

# ids of this load, for 5
printer=$(dirname "$0")/../../build/tests/functional/xpmem_print_ids
ids_before=$("$printer" 64)

# 3: clean unload once nothing uses it
ok_unload=0
wait_until 5 rmmod xpmem 2>/dev/null && ok_unload=1
if [ $ok_unload = 1 ] && [ ! -e /dev/xpmem ]; then
	ok unload_clean_after_last_user
else
	nok unload_clean_after_last_user "rmmod still refused: $(cat /sys/module/xpmem/refcnt 2>/dev/null)"
fi

# 4: reload works and the device comes back
if insmod "$ko" && [ -c /dev/xpmem ]; then
	ok reload_after_unload
else
	nok reload_after_unload "insmod failed or /dev/xpmem missing"
fi
# 5: the ids of a fresh load share nothing with the last load's: they
# are not a function of a counter and a fixed key (the statistics of
# security's ids_carry_56_unpredictable_bits cannot tell a keyless hash of
# a counter from random bits; a reload can)
ids_after=$("$printer" 64)
common=$(comm -12 <(sort <<<"$ids_before") <(sort <<<"$ids_after") | grep -c .)
if [ "$(grep -c . <<<"$ids_before")" = 64 ] && [ "$(grep -c . <<<"$ids_after")" = 64 ] &&
   [ "$common" = 0 ]; then
	ok ids_of_a_new_load_share_nothing_with_the_last
	echo "# first id before the reload $(head -n1 <<<"$ids_before"), after $(head -n1 <<<"$ids_after")"
else
	nok ids_of_a_new_load_share_nothing_with_the_last "$common ids in common; before:" \
		"$(head -n 3 <<<"$ids_before")" "after:" "$(head -n 3 <<<"$ids_after")"
fi
# 6: an unload right after container users' objects went (their records
# still link to their owner's, the collector has not run): the module
# leaves with no "user still owns objects" warning (49e117e warned)
bin=$(cd "$(dirname "$0")/../.." && pwd)/build/tests/functional
echo "xpmem-test: unload_right_after_container_users_is_clean begins" >/dev/kmsg
"$bin/xpmem_security" a_containers_users_share_their_makers_limits >/dev/null 2>&1
sec=$?
if [ $sec -ne 0 ]; then
	nok unload_right_after_container_users_is_clean "the security test that makes container users failed ($sec)"
elif ! wait_until 5 rmmod xpmem 2>/dev/null; then
	nok unload_right_after_container_users_is_clean "rmmod refused: $(cat /sys/module/xpmem/refcnt 2>/dev/null)"
elif dmesg | sed -n '/xpmem-test: unload_right_after_container_users_is_clean begins$/,$p' |
     grep -q 'still owns objects'; then
	nok unload_right_after_container_users_is_clean "the module warned that a user still owns objects"
	insmod "$ko"
else
	ok unload_right_after_container_users_is_clean
	insmod "$ko"
fi
# 7: an unload while the teardown the exit of an attacher queued is still
# pending (test hook teardown_delay_ms holds it): the teardown has gone on
# before an rmmod succeeds.  The pending teardown still holds the
# notifiers that keep the module referenced, so rmmod is refused until it
# has run, and module exit drains the teardown queue besides
# (xpmem_attach_flush(), destroy_workqueue()): either alone keeps the
# order (a variant without the drain passes), both gone would leave the
# teardown to run in freed module text
if [ -e /sys/kernel/debug/xpmem/teardown_delay_ms ]; then
	echo "xpmem-test: unload_waits_for_a_pending_teardown begins" >/dev/kmsg
	rm -f /tmp/xpmem-holding
	"$holder" & hpid=$!
	wait_until 10 test -e /tmp/xpmem-holding
	echo 2000 >/sys/kernel/debug/xpmem/teardown_delay_ms
	kill -9 "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
	rm -f /tmp/xpmem-holding
	since() { dmesg | sed -n '/xpmem-test: unload_waits_for_a_pending_teardown begins$/,$p' | grep -c "$1"; }
	unloaded=0
	wait_until 10 rmmod xpmem 2>/dev/null && unloaded=1
	waited=$(since 'teardown waits')
	went_on=$(since 'the delayed teardown goes on')
	if [ $unloaded = 1 ] && [ "$waited" -ge 1 ] && [ "$went_on" -ge 1 ]; then
		ok unload_waits_for_a_pending_teardown
	else
		nok unload_waits_for_a_pending_teardown "unloaded $unloaded, teardowns held $waited," \
			"gone on before rmmod returned $went_on"
		echo 0 >/sys/kernel/debug/xpmem/teardown_delay_ms 2>/dev/null
	fi
	[ -e /dev/xpmem ] || insmod "$ko"
else
	skip unload_waits_for_a_pending_teardown "the module has no test hooks"
fi
echo "# $((n - fail - skipped)) passed, $fail failed, $skipped skipped"
[ $fail -eq 0 ]
