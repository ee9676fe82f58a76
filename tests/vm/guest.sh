#!/usr/bin/env bash
# Runs inside the qemu guest (Debian's kernel, with dummy and ipip as modules), as root.
# Every check prints "VM-TEST: PASS|FAIL name"; the last line is the count.
set -u
pass=0; fail=0
ok() { echo "VM-TEST: PASS $1"; pass=$((pass + 1)); }
bad() { echo "VM-TEST: FAIL $1"; fail=$((fail + 1)); }
check() { local name=$1; shift; if "$@" >/tmp/check.out 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    /' /tmp/check.out | head -100; fi; }

# shellcheck source=../lib/realserver-netns.sh
. "$REPO/tests/lib/realserver-netns.sh"
snapshot() { # addresses, links and the managed sysctls of a namespace, minus $2 (a device to ignore)
  { ip -n "$1" -o addr show | awk '{print $2, $3, $4}'
    ip -n "$1" -o link show | awk '{print $2, $3}' | sed 's/@[^:]*//'
    ip netns exec "$1" sh -c 'for f in /proc/sys/net/ipv4/conf/*/arp_ignore /proc/sys/net/ipv4/conf/*/arp_announce /proc/sys/net/ipv4/conf/*/rp_filter; do echo "$f $(cat $f)"; done'
  } | grep -v "${2:-^$}" | sort
}
# Whether namespace $1 looks as $2 (an earlier snapshot) says, minus $3; prints what differs.
unchanged() { # (no /dev/fd in the guest: no process substitution)
  snapshot "$1" "${3:-}" > /tmp/snap.now; echo "$2" > /tmp/snap.before
  diff /tmp/snap.before /tmp/snap.now
}
export -f snapshot unchanged
profile() { sed "s#state_dir: /var/lib/rsagent#state_dir: /tmp/state-$2#" "$REPO/profiles/$1.yaml" > "/tmp/$2.yaml"; echo "/tmp/$2.yaml"; }

echo "VM-TEST: kernel $(uname -r), rsagent $("$BIN" --version)"
check "dummy and ipip are not loaded yet" sh -c '! grep -qE "^(dummy|ipip) " /proc/modules'

# --- LVS-DR on a dummy device that rsagent creates (the kernel autoloads the module) ---
make_realserver_netns dr
P=$(profile dr-dummy dr)
before=$(snapshot dr); export before
check "dr-dummy: apply converges" "$BIN" apply --netns dr -c "$P"
check "dr-dummy: lvs0 is a dummy device, up" sh -c "ip -n dr -d link show lvs0 | grep -q 'dummy' && ip -n dr link show lvs0 | grep -q ',UP'"
check "dr-dummy: VIP on lvs0 with the lvs0:rs label" sh -c "ip -n dr addr show dev lvs0 | grep -q '192.0.2.100/32 scope global lvs0:rs'"
check "dr-dummy: lvs0 carries rsagent's alias" sh -c "ip -n dr link show lvs0 | grep -q 'alias rsagent: owned'"
check "dr-dummy: status lists the device as owned" sh -c "'$BIN' status --netns dr -c '$P' --json | grep -q '\"name\" : \"lvs0\"'"
check "dr-dummy: second apply changes nothing" sh -c "'$BIN' apply --netns dr -c '$P' | grep -q '^unchanged'"
check "dr-dummy: down deletes lvs0 and restores everything" bash -c "'$BIN' down --netns dr -c '$P' && unchanged dr \"\$before\""
ip -n dr link add lvs0 type dummy
check "dr-dummy: a dummy device rsagent did not create is a conflict" sh -c "'$BIN' apply --netns dr -c '$P'; [ \$? -eq 2 ]"
check "dr-dummy: ... and down leaves it alone" sh -c "'$BIN' down --netns dr -c '$P' && ip -n dr link show lvs0 >/dev/null"

# --- LVS-Tun: rsagent loads ipip (tunl0 appears), sets it up, loose rp_filter ---
make_realserver_netns tun
P=$(profile tun tun)
before=$(snapshot tun tunl0); export before
check "tun: apply loads ipip and converges" "$BIN" apply --netns tun -c "$P"
check "tun: ipip module loaded by rsagent" grep -q "^ipip " /proc/modules
check "tun: tunl0 up with the VIP" sh -c "ip -n tun link show tunl0 | grep -q ',UP' && ip -n tun addr show dev tunl0 | grep -q '192.0.2.110/32'"
check "tun: loose rp_filter on tunl0 and veth0" sh -c "[ \$(ip netns exec tun cat /proc/sys/net/ipv4/conf/tunl0/rp_filter) = 2 ] && [ \$(ip netns exec tun cat /proc/sys/net/ipv4/conf/veth0/rp_filter) = 2 ]"
check "tun: rsagent check passes" "$BIN" check --netns tun -c "$P" --client 203.0.113.5
check "tun: decapsulated traffic is accepted (route get from client iif tunl0 is local)" sh -c "ip -n tun route get 192.0.2.110 from 203.0.113.5 iif tunl0 | grep -q '^local'"
ip netns exec tun sh -c 'echo 1 > /proc/sys/net/ipv4/conf/tunl0/rp_filter'
check "tun: rsagent check fails naming reverse-path filtering and its fix" sh -c "! '$BIN' check --netns tun -c '$P' --client 203.0.113.5 > /tmp/check.txt; grep -q 'dropped by reverse-path filtering' /tmp/check.txt && grep -q 'sysctl -w net.ipv4.conf.tunl0.rp_filter=2' /tmp/check.txt"
check "tun: with strict rp_filter by hand the kernel rejects it (EINVAL on 6.18, EXDEV on 6.1)" sh -c "out=\$(ip -n tun route get 192.0.2.110 from 203.0.113.5 iif tunl0 2>&1); echo \"\$out\"; echo \"\$out\" | grep -qE 'Invalid argument|Invalid cross-device link'"
check "tun: status reports the drift (exit 3)" sh -c "'$BIN' status --netns tun -c '$P' >/dev/null; [ \$? -eq 3 ]"
check "tun: apply repairs rp_filter" sh -c "'$BIN' apply --netns tun -c '$P' && ip -n tun route get 192.0.2.110 from 203.0.113.5 iif tunl0 | grep -q '^local'"
check "tun: down restores everything (tunl0 stays, set down again)" bash -c "'$BIN' down --netns tun -c '$P' && unchanged tun \"\$before\" tunl0 && ! ip -n tun link show tunl0 | grep -q ',UP'"

# --- end to end: IPVS (ipvsadm, keepalived), DR, Tun, IPv6, repair under traffic, the lab ---
# shellcheck source=e2e.sh
. "$REPO/tests/vm/e2e.sh"

echo "VM-TEST: $pass checks passed, $fail failed"
