# Sourced by tests/vm/e2e.sh inside the qemu guest (its namespaces and helpers): LVS-Tun with every
# encapsulation IPVS can send (`ipvsadm --tun-type ipip|gue|gre`, IPv4 and IPv6 outer headers,
# mixed families), to realservers that `rsagent run` sets up from `tunnel:`. keepalived sends GUE.
#
#   t2 10.80.0.22    outer IPv4: gue (IPv4 VIP, and IPv6 VIP via sit0), gre (both families),
#                    ipip with an IPv6 VIP (6in4 on sit0)
#   t3 fd00:80::23   outer IPv6: ipip (ip6ip6 on ip6tnl0), gre (ip6gre0), IPv6 VIPs; ipip with an
#                    IPv4 VIP (4in6: ip6tnl0 in mode any)
#   t4 10.80.0.24    gre with checksums (`--tun-csum`), outer IPv4 and IPv6: rsagent's own
#      fd00:80::24   rsgre0 and rsip6gre0 (the fallback devices drop checksummed GRE)
#
# The tunnel modules are loaded first, so that their fallback devices are part of what t2 looked
# like before rsagent: `down` must leave them as they were (down, rp_filter as found).

GVIP=192.0.2.120 RVIP=192.0.2.121 MVIP=192.0.2.125 SVIP6=2001:db8::121 RVIP6=2001:db8::123 GVIP6=2001:db8::124
XVIP6=2001:db8::120 GXVIP6=2001:db8::122 X4VIP=192.0.2.126 CVIP=192.0.2.128 CVIP6=2001:db8::128
modprobe -a ipip sit ip6_tunnel ip_gre ip6_gre fou
host t2 10.80.0.22 fd00:80::22
host t3 10.80.0.23 fd00:80::23
host t4 10.80.0.24 fd00:80::24
for v in $GVIP $RVIP $MVIP $X4VIP $CVIP; do ip -n cl route add $v/32 dev eth0; ip -n dir addr add $v/32 dev eth0; done
# preferred_lft 0: the director must not pick a VIP6 as its tunnels' outer source (t3 holds the
# VIPs, and ip6_tunnel drops packets "from itself").
for v in $SVIP6 $RVIP6 $GVIP6 $XVIP6 $GXVIP6 $CVIP6; do
  ip -n cl -6 route add $v/128 dev eth0
  ip -n dir -6 addr add $v/128 dev eth0 nodad preferred_lft 0
done
before_t2=$(snapshot t2) before_t3=$(snapshot t3) before_t4=$(snapshot t4)

tun_profile() { # name, tunnel settings, VIPs (MVIP carries the upload service, tcp/31400)
  cat > "/tmp/$1.yaml" <<YAML
mode: tun
device: lo
interfaces: [eth0]
tunnel: $2
vips: [$3]
${4:-}
test_service: { port: 31337 }
state_dir: /tmp/state-$1
YAML
}
tun_profile t2 "{ type: [ipip, gue, gre], port: 6080, outer: [ipv4], mss: off }" "$GVIP, $RVIP, '$SVIP6', '$RVIP6', '$GVIP6', $MVIP"
tun_profile t3 "{ type: [ipip, gre], outer: [ipv6] }" "'$XVIP6', '$GXVIP6', $X4VIP"
tun_profile t4 "{ type: gre, csum: true, outer: [ipv4, ipv6] }" "$CVIP, '$CVIP6'"
for t in t2 t3 t4; do
  setsid "$BIN" run --netns $t -c /tmp/$t.yaml --resync-interval 2 > /tmp/$t.log 2>&1 &
  eval "pid_$t=$!"
done
for t in t2 t3 t4; do for _ in $(seq 600); do grep -q "running: watching" /tmp/$t.log && break; sleep 0.1; done; done
check "tun-types: run on t2 brought up tunl0, sit0, gre0 and FOU port 6080; on t3 ip6tnl0 and ip6gre0" bash -c "
  for d in tunl0 sit0 gre0; do ip -n t2 link show \$d | grep -q ',UP' || exit 1; done
  for d in ip6tnl0 ip6gre0; do ip -n t3 link show \$d | grep -q ',UP' || exit 1; done
  ip -n t2 fou show | grep -q 'port 6080 gue' || { cat /tmp/t2.log /tmp/t3.log; exit 1; }"
check "tun-types: run set t3's ip6tnl0 to mode any (4in6), and made t4's rsgre0 and rsip6gre0 with icsum" bash -c "
  ip -n t3 -d link show ip6tnl0 | grep -q 'ip6tnl any' || { ip -n t3 -d link show ip6tnl0; exit 1; }
  for d in rsgre0 rsip6gre0; do ip -n t4 -d link show \$d | grep ',UP' -A2 | grep -q icsum || { ip -n t4 -d link show; cat /tmp/t4.log; exit 1; }; done"
check "tun-types: rp_filter 0 where IPv4 arrives without an address (tunl0, gre0, all)" bash -c "
  for d in tunl0 gre0 all; do [ \$(ip netns exec t2 cat /proc/sys/net/ipv4/conf/\$d/rp_filter) = 0 ] || exit 1; done"

# The director: GUE from keepalived (lvs_method TUN type gue), the rest from ipvsadm.
cat > /tmp/keepalived-gue.conf <<KCONF
virtual_server $GVIP 31337 {
    lb_algo rr
    lvs_method TUN type gue port 6080
    protocol TCP
    real_server 10.80.0.22 31337 {
        weight 1
    }
}
KCONF
setsid ip netns exec dir keepalived -n -l -D -f /tmp/keepalived-gue.conf -p /tmp/kg.pid -c /tmp/kgc.pid -r /tmp/kgr.pid > /tmp/keepalived-gue.log 2>&1 &
kgpid=$!
svc() { ipvs -A -t "$1" -s rr && ipvs -a -t "$1" -r "$2" -i ${3:+--tun-type $3} ${4:+--tun-port $4} ${5:-}; }
svc $RVIP:31337 10.80.0.22:31337 gre
svc "[$SVIP6]:31337" 10.80.0.22:31337
svc "[$RVIP6]:31337" 10.80.0.22:31337 gre
svc "[$GVIP6]:31337" 10.80.0.22:31337 gue 6080
svc "[$XVIP6]:31337" "[fd00:80::23]:31337"
svc "[$GXVIP6]:31337" "[fd00:80::23]:31337" gre
svc $MVIP:31400 10.80.0.22:31400
svc $X4VIP:31337 "[fd00:80::23]:31337"
svc $CVIP:31337 10.80.0.24:31337 gre "" --tun-csum
svc "[$CVIP6]:31337" "[fd00:80::24]:31337" gre "" --tun-csum
for _ in $(seq 100); do ipvs -Ln -t $GVIP:31337 2>/dev/null | grep -q 10.80.0.22 && break; sleep 0.2; done
export before_t2
# Three connections, all answered by the realserver for the VIP itself.
tun_probe() { # VIP:PORT
  probe_json "$1" -n 3 --timeout 3 | python3 -c '
import json, sys; r = json.load(sys.stdin); print(json.dumps(r["realservers"]))
s = r["realservers"]; sys.exit(not (r["answered"] == 3 and len(s) == 1 and s[0]["reached"] and all(x == sys.argv[1] for x in s[0]["reached"])))' "$1"
}
export -f tun_probe
check "tun-types: gue, IPv4 VIP, outer IPv4 (keepalived lvs_method TUN type gue port 6080)" tun_probe $GVIP:31337
check "tun-types: gue, IPv6 VIP, outer IPv4 (mixed: sit0 behind the FOU port)" tun_probe "[$GVIP6]:31337"
check "tun-types: gre, IPv4 VIP, outer IPv4 (gre0)" tun_probe $RVIP:31337
check "tun-types: gre, IPv6 VIP, outer IPv4 (mixed: gre0)" tun_probe "[$RVIP6]:31337"
check "tun-types: ipip, IPv6 VIP, outer IPv4 (mixed, 6in4: sit0)" tun_probe "[$SVIP6]:31337"
check "tun-types: ipip, IPv6 VIP, outer IPv6 (ip6ip6: ip6tnl0)" tun_probe "[$XVIP6]:31337"
check "tun-types: gre, IPv6 VIP, outer IPv6 (ip6gre0)" tun_probe "[$GXVIP6]:31337"
check "tun-types: ipip, IPv4 VIP, outer IPv6 (mixed, 4in6: ip6tnl0 in mode any)" tun_probe $X4VIP:31337
check "tun-types: gre --tun-csum, IPv4 VIP, outer IPv4 (rsgre0)" tun_probe $CVIP:31337
check "tun-types: gre --tun-csum, IPv6 VIP, outer IPv6 (rsip6gre0)" tun_probe "[$CVIP6]:31337"
check "tun-types: check passes on t2, t3 and t4" bash -c "'$BIN' check --netns t2 -c /tmp/t2.yaml --client 10.80.0.10 --client fd00:80::10 > /tmp/t2check.txt && '$BIN' check --netns t3 -c /tmp/t3.yaml --client 10.80.0.10 --client fd00:80::10 > /tmp/t3check.txt && '$BIN' check --netns t4 -c /tmp/t4.yaml --client 10.80.0.10 --client fd00:80::10 > /tmp/t4check.txt && grep -q 'ip6tnl0 is in mode any: it takes IPv4' /tmp/t3check.txt && grep -q 'ip6tnl0 takes in the director' /tmp/t3check.txt && grep -q 'rsip6gre0 takes checksummed GRE arriving on eth0' /tmp/t4check.txt || { cat /tmp/t2check.txt /tmp/t3check.txt /tmp/t4check.txt; exit 1; }"

# Someone deletes the FOU port and downs gre0: check names both; run repairs them.
"$BIN" maint --socket /tmp/state-t2/admin.sock >/dev/null   # the daemon would repair at once
ip -n t2 fou del port 6080
ip -n t2 link set gre0 down
check "tun-types: check fails naming the missing FOU port and gre0 down" bash -c "! '$BIN' check --netns t2 -c /tmp/t2.yaml --client 10.80.0.10 > /tmp/t2check.txt; cat /tmp/t2check.txt; grep -q 'FOU port 6080 gue (IPv4) is missing' /tmp/t2check.txt && grep -q 'gre0 is down' /tmp/t2check.txt"
"$BIN" ready --socket /tmp/state-t2/admin.sock >/dev/null
check "tun-types: run repairs both, and GUE and GRE flow again" bash -c "for _ in \$(seq 100); do ip -n t2 fou show | grep -q 6080 && ip -n t2 link show gre0 | grep -q ',UP' && break; sleep 0.1; done; tun_probe $GVIP:31337 && tun_probe $RVIP:31337"
# Someone puts ip6tnl0 back to its default mode: 4in6 is dropped; check names the mode; run repairs.
"$BIN" maint --socket /tmp/state-t3/admin.sock >/dev/null
ip -n t3 -6 tunnel change ip6tnl0 mode ip6ip6
check "tun-types: ip6tnl0 back in mode ip6ip6 drops 4in6, and check fails naming the mode" bash -c "probe_json $X4VIP:31337 -n 1 --timeout 2 | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)[\"answered\"] != 0)' && ! '$BIN' check --netns t3 -c /tmp/t3.yaml --client 10.80.0.10 > /tmp/t3check.txt; cat /tmp/t3check.txt; grep -q 'ip6tnl0 is in mode ip6ip6' /tmp/t3check.txt"
"$BIN" ready --socket /tmp/state-t3/admin.sock >/dev/null
check "tun-types: run sets mode any again, and 4in6 flows" bash -c "for _ in \$(seq 100); do ip -n t3 -d link show ip6tnl0 | grep -q 'ip6tnl any' && break; sleep 0.1; done; tun_probe $X4VIP:31337"
ip -n t2 fou del port 6080
check "tun-types: a FOU port deleted under the running daemon is back within 2 s" bash -c "sleep 2; ip -n t2 fou show | grep -q 'port 6080' && grep -q 'FOU port 6080 gue (IPv4) is gone' /tmp/t2.log || { tail -5 /tmp/t2.log; exit 1; }"

# tunnel.mss: an upload from a client behind a firewall that drops ICMP (so it never learns the
# director's "fragmentation needed") stalls: its 1460-byte segments, DF set, plus the director's
# 20-byte IPIP header exceed the 1500-byte path. With `mss: auto`
# t2's SYN-ACKs from the VIP advertise 1428 (1500 - 32 for GUE, the largest overhead here, - 40)
# and the same upload completes. The client sends one segment per packet (gso_max_size 1500), as
# from a real network: IPVS fragments what arrives as one large GSO packet instead.
in_ns t2 python3 -c '
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 31400)); srv.listen(8)
def sink(c):
    n = 0
    while True:
        b = c.recv(65536)
        if not b: break
        n += len(b)
    c.sendall(b"got %d\n" % n); c.close()
while True: threading.Thread(target=sink, args=(srv.accept()[0],), daemon=True).start()
' > /tmp/sink.log 2>&1 &
upload() {
  in_ns cl python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], 31400), timeout=8)
try:
    c.sendall(b"x" * 300000); c.shutdown(socket.SHUT_WR); print(c.recv(64).decode().strip())
except socket.timeout:
    print("stalled")' $MVIP
}
export -f upload
export MVIP X4VIP
ip -n cl link set eth0 gso_max_size 1500
# The client's firewall, through libnftables as nft would: ICMP "destination unreachable" dropped.
nft_in() { in_ns "$1" python3 -c '
import ctypes, sys
n = ctypes.CDLL("libnftables.so.1"); n.nft_ctx_new.restype = ctypes.c_void_p
sys.exit(n.nft_run_cmd_from_buffer(ctypes.c_void_p(n.nft_ctx_new(0)), (sys.argv[1] + "\n").encode()))' "$2"; }
nft_in cl "table inet blackhole { chain in { type filter hook input priority 0; icmp type destination-unreachable drop; }; }"
check "tun-types: mss off: a 300 kB upload from behind a firewall that drops ICMP stalls in the tunnel" bash -c "out=\$(upload); echo \"\$out\"; [ \"\$out\" = stalled ]"
sed -i 's/mss: off/mss: auto/' /tmp/t2.yaml
kill -HUP "$pid_t2"
check "tun-types: mss auto: rsagent run clamps the SYN-ACKs from the VIPs (status shows the table)" bash -c "for _ in \$(seq 100); do '$BIN' status --netns t2 -c /tmp/t2.yaml --json > /tmp/t2status.json; grep -q '\"mss_clamp\" : \"rsagent: owned, do not edit; mss ipv4 1428' /tmp/t2status.json && exit 0; sleep 0.1; done; grep mss /tmp/t2status.json; tail -5 /tmp/t2.log; exit 1"
check "tun-types: mss auto: the same upload completes" bash -c "out=\$(upload); echo \"\$out\"; [ \"\$out\" = 'got 300000' ]"
ip -n cl link set eth0 gso_max_size 65536
nft_in cl "delete table inet blackhole"
check "tun-types: check says the clamp is in place" bash -c "'$BIN' check --netns t2 -c /tmp/t2.yaml --client 10.80.0.10 --json | python3 -c 'import json,sys; f=[x for x in json.load(sys.stdin)[\"findings\"] if x[\"id\"]==\"mtu.tunnel\"]; print(f); sys.exit(not f or f[0][\"verdict\"] != \"pass\")'"

# down leaves t2 as it found it: the fallback devices down again, rp_filter back, no FOU port.
kill "$pid_t2" "$pid_t3" "$pid_t4" "$kgpid" 2>/dev/null
for p in $pid_t2 $pid_t3 $pid_t4; do for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done; done
check "tun-types: down leaves t2 as it found it (devices down, rp_filter, no FOU port, no MSS table)" bash -c "'$BIN' down --netns t2 -c /tmp/t2.yaml > /tmp/t2down.txt && unchanged t2 \"\$before_t2\" && [ -z \"\$(ip -n t2 fou show)\" ] && '$BIN' status --netns t2 --json | grep -q '\"mss_clamp\" : null' || { cat /tmp/t2down.txt; ip -n t2 fou show; exit 1; }"
export before_t3 before_t4
check "tun-types: down on t3 puts ip6tnl0 back to mode ip6ip6, and on t4 deletes rsgre0 and rsip6gre0" bash -c "'$BIN' down --netns t3 -c /tmp/t3.yaml > /tmp/t3down.txt && '$BIN' down --netns t4 -c /tmp/t4.yaml > /tmp/t4down.txt && ip -n t3 -d link show ip6tnl0 | grep -q 'ip6tnl ip6ip6' && unchanged t3 \"\$before_t3\" && unchanged t4 \"\$before_t4\" || { cat /tmp/t3down.txt /tmp/t4down.txt; ip -n t3 -d link show ip6tnl0; exit 1; }"
