#!/usr/bin/env bash
# Soak: `rsagent run` for SECONDS (default 600) in a fresh namespace, with everything a busy
# realserver sees at once:
#   - a /load poll every millisecond (keep-alive) and an agent-check read every 100 ms;
#   - VIP churn: one of its VIPs deleted behind its back every second (the daemon repairs it);
#   - every 10 s the profile switches between two VIP sets (50 VIPs apart) and gets a SIGHUP.
# Samples the daemon's RSS and open descriptors every 5 s and reports the least-squares slope of
# each over the run after the first minute (warm-up), per 10 minutes: flat means about 0.
# Not part of CI (it takes the time it says). Usage: sudo bench/soak.sh [SECONDS=600]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
# shellcheck source=lib.sh
. bench/lib.sh
bench_setup soak.sh
ns=${tag}s
make_realserver_netns "$ns"
vips() { for ((i = $1; i < $2; i++)); do echo "  - 198.18.$((i / 250)).$((i % 250 + 1))"; done; }
profile() { # $1 first VIP index, $2 end
  { echo "mode: dr"; echo "state_dir: $work/state"
    echo "load: { http: 127.0.0.1:3334, agent_check: 127.0.0.1:3333 }"
    echo "test_service: { port: 31337, http_port: 31380 }"; echo "vips:"; vips "$1" "$2"; } >"$work/p.tmp"
  mv "$work/p.tmp" "$work/profile.yaml"
}
profile 0 200
setsid ip netns exec "$ns" "$BIN" run -c "$work/profile.yaml" 2>"$work/daemon.log" &
pids+=($!)
dpid=$!
for _ in $(seq 50); do grep -q "running: watching" "$work/daemon.log" && break; sleep 0.1; done

cat >"$work/poll.py" <<'PY'
import http.client, socket, sys, time
secs, start, n, agent = float(sys.argv[1]), time.perf_counter(), 0, 0
c = http.client.HTTPConnection("127.0.0.1", 3334, timeout=5)
while time.perf_counter() - start < secs:
    due = start + n * 0.001
    while time.perf_counter() < due: pass
    c.request("GET", "/load"); r = c.getresponse(); r.read()
    if r.status != 200: sys.exit("GET /load: %d" % r.status)
    n += 1
    if n % 100 == 0:
        s = socket.create_connection(("127.0.0.1", 3333), timeout=5); s.recv(64); s.close(); agent += 1
print("%d polls (%.0f/s), %d agent-check reads" % (n, n / (time.perf_counter() - start), agent))
PY
setsid ip netns exec "$ns" python3 "$work/poll.py" "$SECS" >"$work/poll.out" 2>&1 &
pids+=($!)
poller=$!

echo "bench/soak.sh: ${SECS}s; sampling every 5 s" >&2
: >"$work/samples"
start=$(date +%s)
set_ab=0
for ((t = 0; t < SECS; t++)); do
  ip -n "$ns" addr del "198.18.0.$((RANDOM % 50 + 1))/32" dev lo 2>/dev/null || true
  if ((t % 10 == 9)); then
    set_ab=$((1 - set_ab))
    if ((set_ab)); then profile 50 250; else profile 0 200; fi
    kill -HUP "$(pgrep -f "rsagent run -c $work/profile.yaml" | head -n1)"
  fi
  if ((t % 5 == 0)); then
    d=$(pgrep -f "rsagent run -c $work/profile.yaml" | head -n1)
    echo "$(($(date +%s) - start)) $(awk '/^VmRSS/ {print $2}' "/proc/$d/status") $(ls "/proc/$d/fd" | wc -l)" >>"$work/samples"
  fi
  sleep 1
done
wait "$poller" || { echo "bench/soak.sh: the poller failed: $(cat "$work/poll.out")" >&2; exit 1; }
kill -0 "$dpid" || { echo "bench/soak.sh: the daemon died: $(tail -5 "$work/daemon.log")" >&2; exit 1; }
repairs=$(grep -c "repaired:" "$work/daemon.log" || true)
reloads=$(grep -c "\] reloaded " "$work/daemon.log" || true)
echo "bench/soak.sh: $(cat "$work/poll.out"); $repairs repairs, $reloads reloads"
# Least-squares slope after the first minute, scaled to 10 minutes.
awk '$1 >= 60 {n++; x+=$1; y+=$2; f+=$3; xx+=$1*$1; xy+=$1*$2; xf+=$1*$3; if (!r0) {r0=$2; f0=$3}; r1=$2; f1=$3}
  END {d = n*xx - x*x; if (n < 3 || d == 0) {print "too few samples"; exit 1}
       printf "RSS: %.1f -> %.1f MB, slope %+.2f MB per 10 min\n", r0/1024, r1/1024, (n*xy - x*y)/d * 600 / 1024
       printf "descriptors: %d -> %d, slope %+.2f per 10 min\n", f0, f1, (n*xf - x*f)/d * 600}' "$work/samples"
