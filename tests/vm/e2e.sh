# Sourced by tests/vm/guest.sh inside the qemu guest: end-to-end LVS scenarios with a real IPVS
# director (ipvsadm, keepalived), realservers set up by `rsagent run`, and a client using
# `rsagent probe`. Every namespace sits on one bridge:
#
#   cl 10.80.0.10 / fd00:80::10      client; the VIPs are on its link, so it ARPs for them
#   dir 10.80.0.2 / fd00:80::2       director: VIPs on eth0, IPVS services
#   r1 10.80.0.11 / fd00:80::11      realserver, VIPs on lo           (rsagent run)
#   r2 10.80.0.12 / fd00:80::12      realserver, VIPs on dummy lvs0   (rsagent run)
#   t1 10.80.0.21                    LVS-Tun realserver, VIP on tunl0 (rsagent apply + run)

VIP=192.0.2.100 VIP6=2001:db8::100 TVIP=192.0.2.110
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
ipvs() { in_ns dir ipvsadm "$@"; }
probe_json() { "$BIN" probe --netns cl "$@" --json; }
# "RIP:answers …" from a probe's JSON.
answers() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(" ".join("%s:%d" % (s["rip"], s["answers"]) for s in r["realservers"]))'; }
reached() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(" ".join(sorted(set(x for s in r["realservers"] for x in s["reached"]))))'; }

modprobe crc32c_generic 2>/dev/null; modprobe ip_vs && modprobe ip_vs_rr && modprobe ip_vs_wrr
ip netns add lan
ip -n lan link add br0 type bridge
ip -n lan link set br0 up
host() { # name, IPv4, IPv6
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip -n lan link add "to-$1" type veth peer name eth0 netns "$1"
  ip -n lan link set "to-$1" master br0 up
  ip -n "$1" addr add "$2/24" dev eth0
  [ -n "${3:-}" ] && ip -n "$1" -6 addr add "$3/64" dev eth0 nodad
  ip -n "$1" link set eth0 up
}
host cl 10.80.0.10 fd00:80::10
host dir 10.80.0.2 fd00:80::2
# Set up for drains, as docs/directors.md asks: a new connection from a reused client port to a
# realserver at weight 0 is scheduled anew, not sent after the old entry.
in_ns dir sh -c 'echo 1 > /proc/sys/net/ipv4/vs/expire_nodest_conn'
host r1 10.80.0.11 fd00:80::11
host r2 10.80.0.12 fd00:80::12
host t1 10.80.0.21
ip -n cl route add $VIP/32 dev eth0
ip -n cl route add $TVIP/32 dev eth0
ip -n cl -6 route add $VIP6/128 dev eth0
ip -n dir addr add $VIP/32 dev eth0
ip -n dir addr add $TVIP/32 dev eth0
ip -n dir -6 addr add $VIP6/128 dev eth0 nodad

rs_profile() { # name, device, extra top-level keys
  cat > "/tmp/$1.yaml" <<EOF
mode: dr
device: $2
interfaces: [eth0]
${3:-}
vips:
  - address: $VIP
    services: [tcp/31337, tcp/31400]
  - address: $VIP6
    services: [tcp/31337]
load: { http: 0.0.0.0:3334, agent_check: 0.0.0.0:3333, weight: { max: 60 } }
test_service: { port: 31337 }
state_dir: /tmp/state-$1
EOF
}
rs_profile r1 lo
# r2 is stopped at the end with on_stop: drain, under traffic (section f).
rs_profile r2 dummy "on_stop: drain
drain_timeout: 60s"
for r in r1 r2; do
  setsid "$BIN" run --netns $r -c /tmp/$r.yaml --resync-interval 2 > /tmp/$r.log 2>&1 &
  eval "pid_$r=$!"
done
for r in r1 r2; do
  for _ in $(seq 600); do grep -q "running: watching" /tmp/$r.log && break; sleep 0.1; done
done
check "e2e: rsagent run on r1 (lo) and r2 (dummy lvs0) is up" bash -c "grep -q 'running: watching' /tmp/r1.log && grep -q 'running: watching' /tmp/r2.log && ip -n r2 addr show dev lvs0 | grep -q '$VIP/32'"

# --- a. LVS-DR with ipvsadm, rr then wrr ---
ipvs -A -t $VIP:31337 -s rr
ipvs -a -t $VIP:31337 -r 10.80.0.11:31337 -g -w 1
ipvs -a -t $VIP:31337 -r 10.80.0.12:31337 -g -w 1
probe_json $VIP:31337 -n 20 > /tmp/a.json
export -f answers reached probe_json ipvs in_ns
export VIP VIP6 TVIP BIN
check "a: rr: probe from the client sees both realservers" bash -c "answers < /tmp/a.json | grep -q 10.80.0.11 && answers < /tmp/a.json | grep -q 10.80.0.12"
check "a: rr: each answered for the VIP (local=$VIP:31337)" bash -c "[ \"\$(reached < /tmp/a.json)\" = '$VIP:31337' ]"
sleep 3   # IPVS sums its stats every 2 s
check "a: replies bypass the director (IPVS InPkts > 0, OutPkts 0)" bash -c "ipvs -Ln --stats -t $VIP:31337 | awk '\$1 == \"TCP\" {print; exit !(\$4 > 0 && \$5 == 0)}'"
dmac=$(ip -n dir link show eth0 | awk '/link\/ether/ {print $2}')
check "a: the client's neighbour entry for the VIP is the director's MAC ($dmac)" bash -c "ip -n cl neigh show $VIP | grep -q 'lladdr $dmac'"
ipvs -E -t $VIP:31337 -s wrr
ipvs -e -t $VIP:31337 -r 10.80.0.11:31337 -g -w 3
ipvs -e -t $VIP:31337 -r 10.80.0.12:31337 -g -w 1
probe_json $VIP:31337 -n 40 > /tmp/a2.json
check "a: wrr 3:1: r1 answers three times as often as r2" bash -c "answers < /tmp/a2.json | tr ' ' '\n' | sort | tr '\n' ' ' | grep -q '10.80.0.11:30 10.80.0.12:10'"

# --- c. IPv6 LVS-DR, the VIP on lo (r1) and on lvs0 (r2) ---
ipvs -A -t "[$VIP6]:31337" -s rr
ipvs -a -t "[$VIP6]:31337" -r "[fd00:80::11]:31337" -g
ipvs -a -t "[$VIP6]:31337" -r "[fd00:80::12]:31337" -g
probe_json "[$VIP6]:31337" -n 20 > /tmp/c.json
check "c: IPv6: both realservers answer for [$VIP6]:31337" bash -c "answers < /tmp/c.json | grep -q 10.80.0.11 && answers < /tmp/c.json | grep -q 10.80.0.12 && [ \"\$(reached < /tmp/c.json)\" = '[$VIP6]:31337' ]"

# --- e. rsagent run repairs a VIP deleted from lvs0 while traffic flows ---
"$BIN" probe --netns cl $VIP:31337 -n 150 --timeout 1 --json > /tmp/e.json &
probing=$!
sleep 1
ip -n r2 addr del $VIP/32 dev lvs0
wait $probing
check "e: the VIP is back on lvs0, repaired by rsagent run" bash -c "ip -n r2 addr show dev lvs0 | grep -q '$VIP/32' && grep -q 'repaired: add $VIP/32 to lvs0' /tmp/r2.log"
check "e: traffic kept flowing (at least 140 of 150 connections answered)" python3 -c "import json; r=json.load(open('/tmp/e.json')); print(r['answered'], r['failed']); exit(r['answered'] < 140)"

# --- b. LVS-Tun: rsagent makes tunl0; strict rp_filter drops the traffic and check says why ---
cat > /tmp/t1.yaml <<EOF
mode: tun
interfaces: [eth0]
vips:
  - address: $TVIP
    services: [tcp/31337]
test_service: { port: 31337 }
state_dir: /tmp/state-t1
EOF
setsid "$BIN" run --netns t1 -c /tmp/t1.yaml > /tmp/t1.log 2>&1 &
for _ in $(seq 600); do grep -q "running: watching" /tmp/t1.log && break; sleep 0.1; done
ipvs -A -t $TVIP:31337 -s rr
ipvs -a -t $TVIP:31337 -r 10.80.0.21:31337 -i
check "b: tun: rsagent made tunl0 up with the VIP" bash -c "ip -n t1 link show tunl0 | grep -q ',UP' && ip -n t1 addr show dev tunl0 | grep -q '$TVIP/32' || { cat /tmp/t1.log; exit 1; }"
check "b: tun: check passes" "$BIN" check --netns t1 -c /tmp/t1.yaml --client 10.80.0.10
check "b: tun: traffic flows through the tunnel" bash -c "probe_json $TVIP:31337 -n 5 | answers | grep -q '10.80.0.21:5'"
"$BIN" maint --socket /tmp/state-t1/admin.sock >/dev/null   # the daemon would repair at once
in_ns t1 sh -c 'echo 1 > /proc/sys/net/ipv4/conf/tunl0/rp_filter'
check "b: tun: with strict rp_filter the traffic is dropped" bash -c "probe_json $TVIP:31337 -n 3 --timeout 1 | python3 -c 'import json,sys; exit(json.load(sys.stdin)[\"answered\"] != 0)'"
check "b: tun: check fails naming rp_filter" bash -c "! '$BIN' check --netns t1 -c /tmp/t1.yaml --client 10.80.0.10 > /tmp/bcheck.txt; grep -q 'reverse-path filtering' /tmp/bcheck.txt"
check "b: tun: apply repairs it and traffic flows again" bash -c "'$BIN' apply --netns t1 -c /tmp/t1.yaml >/dev/null && probe_json $TVIP:31337 -n 5 | answers | grep -q '10.80.0.21:5'"
"$BIN" ready --socket /tmp/state-t1/admin.sock >/dev/null

# --- d. keepalived as the director: MISC_CHECK + misc_dynamic follow rsagent drain / ready ---
ipvs -C
cat > /tmp/keepalived.conf <<EOF
global_defs {
    script_user root
}
virtual_server $VIP 31337 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
EOF
for r in 11 12; do cat >> /tmp/keepalived.conf <<EOF
    real_server 10.80.0.$r 31337 {
        weight 100
        MISC_CHECK {
            misc_path "$BIN weight 10.80.0.$r:3334 --keepalived"
            misc_timeout 20
            misc_dynamic
        }
    }
EOF
done
echo "}" >> /tmp/keepalived.conf
# Section g's held connections: VIP:31400 on r1 alone (checked every 2 s: the guest is slow).
cat >> /tmp/keepalived.conf <<EOF
virtual_server $VIP 31400 {
    delay_loop 2
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.80.0.11 31400 {
        weight 100
        MISC_CHECK {
            misc_path "$BIN weight 10.80.0.11:3334 --keepalived"
            misc_timeout 20
            misc_dynamic
        }
    }
}
EOF
setsid ip netns exec dir keepalived -n -l -D -f /tmp/keepalived.conf -p /tmp/k.pid -c /tmp/kc.pid -r /tmp/kr.pid > /tmp/keepalived.log 2>&1 &
kpid=$!
weight_of() { ipvs -Ln -t $VIP:31337 | awk -v rs="10.80.0.$1:31337" '$2 == rs {print $4}'; }
wait_weight() { # rs, test ("-gt 0" / "-eq 0")
  for _ in $(seq 60); do w=$(weight_of "$1"); [ -n "$w" ] && [ "$w" $2 ] && return 0; sleep 0.5; done
  echo "weight of 10.80.0.$1 is '$w'"; ipvs -Ln; tail -20 /tmp/keepalived.log; return 1
}
export -f weight_of wait_weight
# The agents report at most 60 (load.weight.max): a weight in 1..60 is theirs, not the configured 100.
check "d: keepalived sets r1's weight from rsagent weight (1..60, not the configured 100)" bash -c "wait_weight 11 '-le 60' && [ \$(weight_of 11) -gt 0 ]"
"$BIN" drain --socket /tmp/state-r1/admin.sock >/dev/null
check "d: rsagent drain on r1: keepalived sets its weight to 0" wait_weight 11 "-eq 0"
check "d: ... r2 keeps its weight" wait_weight 12 "-gt 0"
"$BIN" ready --socket /tmp/state-r1/admin.sock >/dev/null
check "d: rsagent ready on r1: its weight comes back" wait_weight 11 "-gt 0"
check "d: ... and r2's weight is its agent's too (1..60)" wait_weight 12 "-le 60"

# --- g. drain --wait returns only when IPVS shows r1's ActiveConn 0 ---
# A service on r1 that holds every connection until the client closes it; keepalived (still
# running, misc_dynamic) sends VIP:31400 to r1. The client connects, drain --wait starts, the
# client closes 3 s later.
in_ns r1 python3 -c '
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 31400)); srv.listen(16)
def hold(c):
    while c.recv(64): c.sendall(b"ok\n")
    c.close()
while True: threading.Thread(target=hold, args=(srv.accept()[0],), daemon=True).start()
' > /tmp/hold.log 2>&1 &
active_of() { ipvs -Ln -t $VIP:31400 | awk '$2 == "10.80.0.11:31400" {print $5}'; }
wait_weight_31400() { for _ in $(seq 60); do w=$(ipvs -Ln -t $VIP:31400 | awk '$2 == "10.80.0.11:31400" {print $4}'); [ -n "$w" ] && [ "$w" -gt 0 ] && return 0; sleep 0.5; done; ipvs -Ln; return 1; }
export -f active_of
check "g: keepalived sends $VIP:31400 to r1 (weight > 0)" wait_weight_31400
# The client closes 2 s after drain --wait has counted its connection: the emulated guest is too
# slow for a fixed timeline (starting a command can take seconds here).
in_ns cl python3 -c '
import socket, sys, time
c = socket.create_connection((sys.argv[1], 31400), timeout=30); c.sendall(b"x"); c.recv(8)
print("connected", flush=True)
deadline = time.time() + 120
while time.time() < deadline:
    try:
        if "\"%s:31400\":1" % sys.argv[1] in open("/tmp/g-drain.txt").read(): break
    except OSError: pass
    time.sleep(0.1)
time.sleep(2); c.close(); print("closed", time.time(), flush=True)
' $VIP > /tmp/g-client.log 2>&1 &
for _ in $(seq 300); do grep -q connected /tmp/g-client.log && break; sleep 0.1; done
check "g: IPVS shows the client's connection to r1 (ActiveConn 1)" bash -c 'for _ in $(seq 50); do [ "$(active_of)" = 1 ] && exit 0; sleep 0.2; done; cat /tmp/g-client.log; ipvs -Ln; exit 1'
"$BIN" drain --wait --json --timeout 120 --netns r1 --socket /tmp/state-r1/admin.sock > /tmp/g-drain.txt 2>&1; grc=$?
g1=$(date +%s.%N); gactive=$(active_of)
export grc g1 gactive
# After the close it still waits for keepalived's checkers to act on the drain (seconds here).
check "g: drain --wait counted the held connection, and returned 0 after the client closed" bash -c "cat /tmp/g-drain.txt /tmp/g-client.log; [ \$grc -eq 0 ] && grep -q '\"$VIP:31400\":1' /tmp/g-drain.txt && python3 -c '
import sys; closed = float(open(\"/tmp/g-client.log\").read().split(\"closed \")[1])
print(\"returned %.2f s after the close\" % (float(sys.argv[1]) - closed)); sys.exit(float(sys.argv[1]) < closed)' \$g1"
check "g: ... and at that moment IPVS shows r1's ActiveConn 0" bash -c '[ "$gactive" = 0 ]'
"$BIN" ready --socket /tmp/state-r1/admin.sock >/dev/null
# Section f needs r1 back in IPVS: with both realservers at weight 0 IPVS has nowhere to send.
check "g: ready on r1: keepalived gives it its weight back" wait_weight 11 "-gt 0"

# --- f. on_stop: drain on r2 under a connection loop: SIGTERM loses no connection ---
# What r2's stop could lose is a connection sent to it after its listener closed (refused) or
# after its VIP went (dropped there, the client times out). A timeout on this emulated,
# saturated guest can also be load alone, so the loop may lose 1 % to timeouts, none to refusal.
# The client connects again and again from before the signal until after r2 has exited.
rm -f /tmp/f-stopped
in_ns cl python3 -c '
import json, os, socket, sys, time
vip, answers, refused, timeouts, other = sys.argv[1], {}, [], 0, []
end = time.time() + 180
stopped_at = None
while time.time() < end and sum(answers.values()) + len(refused) + timeouts < 20000:
    if stopped_at is None and os.path.exists("/tmp/f-stopped"): stopped_at = time.time()
    if stopped_at is not None and time.time() > stopped_at + 2: break
    try:
        c = socket.create_connection((vip, 31337), timeout=5)
        line = c.makefile().readline(); c.close()
        rip = line.split("rip=")[1].split()[0]
        answers[rip] = answers.get(rip, 0) + 1
    except ConnectionRefusedError: refused.append(round(time.time(), 2))
    except socket.timeout: timeouts += 1
    except Exception as e: other.append(repr(e))
print(json.dumps({"answers": answers, "refused": refused, "timeouts": timeouts, "other": other[:5],
                  "ran_past_stop": stopped_at is not None, "stopped_at": stopped_at}))
' $VIP > /tmp/f.json 2>&1 &
looping=$!
# SIGTERM once the loop is running and r2 has had its share of it (IPVS counts r2's connections).
r2_conns() { ipvs -Ln --stats -t $VIP:31337 | awk '$2 == "10.80.0.12:31337" {print $3}'; }
f0=$(r2_conns)
for _ in $(seq 600); do [ "$(r2_conns)" -ge $((f0 + 20)) ] && break; sleep 0.1; done
( while [ ! -e /tmp/f-stopped ]; do echo "$(date +%s.%N | cut -c1-13) $(ipvs -Ln -t $VIP:31337 | awk '$1 == "->" && $2 ~ /^10/ {printf "%s w%s a%s i%s  ", $2, $4, $5, $6}')"; sleep 0.2; done ) > /tmp/f-ipvs.txt 2>&1 &
echo "$(date +%s.%N | cut -c1-13) SIGTERM" > /tmp/f-times.txt
kill -TERM "$pid_r2"
for _ in $(seq 900); do kill -0 "$pid_r2" 2>/dev/null || break; sleep 0.1; done
echo "$(date +%s.%N | cut -c1-13) r2 exited" >> /tmp/f-times.txt
touch /tmp/f-stopped
wait $looping
check "f: r2 drained (the director read drain), then removed its VIPs and exited" bash -c "! kill -0 $pid_r2 2>/dev/null && grep -q 'on_stop: drain: no connections left' /tmp/r2.log && ! ip -n r2 addr show dev lvs0 2>/dev/null | grep -q '$VIP/32' || { tail -20 /tmp/r2.log; exit 1; }"
check "f: the connection loop ran through r2's stop: none refused, at most 1 % timed out, both answered" bash -c "cat /tmp/f-times.txt; grep -a 'on_stop\|stopping\|received' /tmp/r2.log; cat /tmp/f-ipvs.txt | tail -60; python3 -c \"
import json; r = json.load(open('/tmp/f.json')); print(r)
n = sum(r['answers'].values()) + len(r['refused']) + r['timeouts'] + len(r['other'])
exit(r['refused'] or r['other'] or r['timeouts'] > n / 100 or not r['ran_past_stop'] or len(r['answers']) != 2)\""
kill "$kpid" 2>/dev/null

# --- LVS-Tun with every encapsulation: gue, gre, ipip over IPv4 and IPv6, mixed families ---
# shellcheck source=encaps.sh
. "$REPO/tests/vm/encaps.sh"

# --- the lab, with a real IPVS director this time ---
check "lab: rsagent lab with an IPVS director shows both realservers and the director alone answering ARP" bash -c "'$BIN' lab --keep -n 10 > /tmp/lab.txt 2>&1; rc=\$?; cat /tmp/lab.txt; [ \$rc -eq 0 ] && grep -q 'the director is IPVS' /tmp/lab.txt && grep -q 'only the director answered' /tmp/lab.txt"
# The kept lab's IPVS director follows the agents: drain rs1, and new connections go to rs2.
labwork=$(grep -o '/tmp/rsagent-lab-[0-9]*' /tmp/lab.txt | head -n1)
export labwork
# No probe may reach rs1. A probe may go unanswered on the loaded emulated guest (once in CI
# "all 20 to rs2" failed with rs1 at weight 0 already; the probe's output was not kept then, it
# is printed now): 18 of 20 must reach rs2.
check "lab: after drain --wait on rs1 the IPVS director sends no probe to rs1 (18+ of 20 answered by rs2)" bash -c "'$BIN' drain --wait --timeout 30 -c \$labwork/rs1.yaml && cat \$labwork/director.log && ip netns exec rslab-director ipvsadm -Ln && { '$BIN' probe --netns rslab-client 192.0.2.100:31337 -n 20 --timeout 3 --json > /tmp/labprobe.json || true; } && python3 -c 'import json,sys; r=json.load(open(\"/tmp/labprobe.json\")); print(json.dumps(r)); a={s[\"rip\"]: s[\"answers\"] for s in r[\"realservers\"]}; sys.exit(not (a.get(\"10.77.0.11\", 0) == 0 and a.get(\"10.77.0.12\", 0) >= 18))'"
"$BIN" lab --clean >/dev/null 2>&1

sed 's/^/    /' /tmp/lab.txt
for p in $(jobs -p); do kill "$p" 2>/dev/null; done
