#!/usr/bin/env bash
# Benchmark: the load report, against its peers, in one run in a fresh namespace.
#   sample: with N established connections on a declared service, how long one rsagent sample
#     takes (the daemon's own `sample_duration_seconds`: /proc/stat, loadavg, meminfo and the
#     sock_diag count) against `ss -Htn state established '( sport = :8080 )'` and a read of
#     /proc/net/tcp — the two ways an operator or a script would count them.
#   /load: latency of `GET /load` under R requests/s on one keep-alive connection, against
#     HAProxy answering the same body with `http-request return` (a fixed in-memory reply).
# Usage: bench/load.sh [N=19000] [R=1000] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-19000}
RATE=${2:-1000}
SECS=${3:-10}
# shellcheck source=lib.sh
. bench/lib.sh
bench_setup load.sh
command -v haproxy >/dev/null || { echo "bench/load.sh: needs haproxy (apt-get install haproxy)" >&2; exit 1; }
ns=${tag}r
make_realserver_netns "$ns"
cat >"$work/profile.yaml" <<EOF
mode: dr
vips:
  - address: 192.0.2.100
    services: [tcp/8080]
load: { http: 127.0.0.1:3334, interval: 0.5 }
state_dir: $work/state
EOF
start_daemon "$ns"

hold_connections "$ns" "$N"
load() { ip netns exec "$ns" curl -s http://127.0.0.1:3334/load; }
for ((t = 0; t < 100; t++)); do
  [ "$(load | python3 -c 'import json,sys; print(json.load(sys.stdin)["metrics"]["services"][0]["established"])')" = "$N" ] && break
  sleep 0.2
done

# rsagent: 21 consecutive samples as the daemon timed them.
for ((i = 0; i < 21; i++)); do
  load | python3 -c 'import json,sys; m=json.load(sys.stdin)["metrics"]; print(m["sample_duration_seconds"]*1000, m["services"][0]["established"])'
  sleep 0.5
done >"$work/rs.samples"
counted=$(awk '{print $2}' "$work/rs.samples" | sort -n | uniq | tr '\n' ' ')
rs_ms=$(awk '{print $1}' "$work/rs.samples" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}')

# The peers, timed inside the namespace so only the command itself is measured.
median_ms() { # $@: command; 21 runs
  ip netns exec "$ns" bash -c '
    for ((i = 0; i < 21; i++)); do
      s=${EPOCHREALTIME/./}; "$@" >/dev/null; e=${EPOCHREALTIME/./}; echo $((e - s))
    done' _ "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] / 1000}'
}
ss_lines=$(ip netns exec "$ns" ss -Htn state established '( sport = :8080 )' | wc -l)
ss_ms=$(median_ms ss -Htn state established '( sport = :8080 )')
proc_ms=$(median_ms cat /proc/net/tcp)

# GET /load latency at RATE requests/s, then HAProxy returning the same body.
load >"$work/body.json"
cat >"$work/haproxy.cfg" <<EOF
global
  nbthread 1
defaults
  mode http
  timeout client 10s
  timeout connect 1s
  timeout server 1s
frontend fe
  bind 127.0.0.1:3335
  http-request return status 200 content-type application/json file $work/body.json
EOF
setsid ip netns exec "$ns" haproxy -db -f "$work/haproxy.cfg" 2>"$work/haproxy.log" &
pids+=($!)
sleep 0.5
cat >"$work/pace.py" <<'EOF'
import http.client, sys, time
port, rate, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
lat, step = [], 1.0 / rate
start = time.perf_counter()
for i in range(int(rate * secs)):
    due = start + i * step
    while time.perf_counter() < due: pass
    t = time.perf_counter(); c.request("GET", "/load"); r = c.getresponse(); r.read()
    assert r.status == 200
    lat.append((time.perf_counter() - t) * 1000)
took = time.perf_counter() - start
lat.sort()
print("%.3f %.3f %d %.0f" % (lat[len(lat) // 2], lat[int(len(lat) * 0.99)], len(lat), len(lat) / took))
EOF
read -r rs_p50 rs_p99 rs_n rs_rate < <(ip netns exec "$ns" python3 "$work/pace.py" 3334 "$RATE" "$SECS")
read -r hp_p50 hp_p99 hp_n hp_rate < <(ip netns exec "$ns" python3 "$work/pace.py" 3335 "$RATE" "$SECS")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
echo "bench/load.sh: $N established connections on 192.0.2.100:8080 (rsagent counted: $counted; ss lines: $ss_lines)"
printf '%-44s %10s %10s %8s %s\n' "work" "rsagent" "peer" "ratio" "(target)"
printf '%-44s %8s ms %8s ms %8s %s\n' "one sample vs ss -Htn state established sport" "$rs_ms" "$ss_ms" "$(ratio "$rs_ms" "$ss_ms")" "(<= 0.5)"
printf '%-44s %8s ms %8s ms %8s %s\n' "one sample vs read of /proc/net/tcp" "$rs_ms" "$proc_ms" "$(ratio "$rs_ms" "$proc_ms")" "(<= 0.2)"
printf '%-44s %8s ms %8s ms %8s %s\n' "GET /load p50 at $rs_rate/s vs HAProxy return" "$rs_p50" "$hp_p50" "$(ratio "$rs_p50" "$hp_p50")" ""
printf '%-44s %8s ms %8s ms %8s %s\n' "GET /load p99 at $rs_rate/s vs HAProxy return" "$rs_p99" "$hp_p99" "$(ratio "$rs_p99" "$hp_p99")" "(rsagent <= 2 ms)"
bench_row "load sample, $N connections" ms "$rs_ms" "ss -Htn state established sport" "$ss_ms" "ratio <= 0.5"
bench_row "load sample, $N connections" ms "$rs_ms" "read of /proc/net/tcp" "$proc_ms" "ratio <= 0.2"
bench_row "GET /load p99 at $rs_rate/s" ms "$rs_p99" "HAProxy http-request return" "$hp_p99" "rsagent <= 2"
