#!/usr/bin/env bash
# Benchmark: what rsagent costs a realserver to carry, next to prometheus-node-exporter (Go, the
# agent fleets already run) measured in the same run:
#   binary      the stripped static binary the package ships, against node_exporter's
#   idle RSS    `rsagent run` with the load report and the test service, idle for IDLE seconds;
#               node_exporter after two scrapes and the same idle time
#   startup     `rsagent --version` and `rsagent weight` (a refused connection: what keepalived
#               runs every few seconds), median wall time of N runs; node_exporter --version
#   scrapes     RSS after SCRAPES /metrics scrapes, minus idle RSS, for both
# Usage: bench/footprint.sh [IDLE=10] [N=200] [SCRAPES=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE=${1:-10}
N=${2:-200}
SCRAPES=${3:-10000}
# shellcheck source=lib.sh
. bench/lib.sh
bench_setup footprint.sh
command -v prometheus-node-exporter >/dev/null || {
  echo "bench/footprint.sh: needs prometheus-node-exporter (apt-get install prometheus-node-exporter)" >&2
  exit 1
}
NE=$(command -v prometheus-node-exporter)
strip -o "$work/rsagent" "$BIN"
# Written back, as an installed binary is (dpkg fsyncs what it unpacks): pages of a file still
# being written back are mapped in larger runs, and the daemon started the moment after `strip`
# measured 1.2 MB more RSS than the same bytes a second later.
sync "$work/rsagent"
size_mb() { echo "scale=1; $(stat -c %s "$1") / 1048576" | bc; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
mb() { echo "scale=1; $1 / 1024" | bc; }

# Median wall time of N runs of a command, in ms: posix_spawn and wait, output to /dev/null.
wall() {
  python3 - "$N" "$@" <<'EOF'
import os, sys, time
n, cmd = int(sys.argv[1]), sys.argv[2:]
null = os.open("/dev/null", os.O_WRONLY)
quiet = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
t = []
for _ in range(n):
    s = time.perf_counter()
    os.waitpid(os.posix_spawn(cmd[0], cmd, os.environ, file_actions=quiet), 0)
    t.append(time.perf_counter() - s)
t.sort()
print(f"{t[len(t) // 2] * 1000:.2f}")
EOF
}

# Start-up first, while nothing else of this benchmark runs.
rs_version=$(wall "$work/rsagent" --version)
rs_weight=$(wall "$work/rsagent" weight 127.0.0.1:9 --timeout 1)
ne_version=$(wall "$NE" --version)

# SCRAPES GETs of a URL on one keep-alive connection, from inside a namespace.
scrape() { # $1 namespace, $2 port, $3 count
  ip netns exec "$1" python3 - "$2" "$3" <<'EOF'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
for _ in range(n):
    c.request("GET", "/metrics")
    c.getresponse().read()
EOF
}

# rsagent run: load report and test service.
make_realserver_netns "${tag}r"
cat >"$work/profile.yaml" <<EOF
mode: dr
vips: [192.0.2.100]
load: { http: 127.0.0.1:3334, agent_check: 127.0.0.1:3333 }
test_service: { port: 31337, http_port: 31380 }
state_dir: $work/state
EOF
start_daemon "${tag}r" "$work/rsagent"
rpid=$daemon_pid
scrape "${tag}r" 3334 2

# node_exporter, in a namespace of its own, after two scrapes.
make_realserver_netns "${tag}n"
setsid ip netns exec "${tag}n" "$NE" --web.listen-address=127.0.0.1:9100 >"$work/ne.log" 2>&1 &
pids+=($!)
for ((t = 0; t < 100; t++)); do ip netns exec "${tag}n" bash -c ': </dev/tcp/127.0.0.1/9100' 2>/dev/null && break; sleep 0.05; done
npid=$(pgrep -f "$NE --web.listen-address=127.0.0.1:9100" | head -n1)
scrape "${tag}n" 9100 2

sleep "$IDLE"
rs_idle=$(rss_kb "$rpid")
ne_idle=$(rss_kb "$npid")
scrape "${tag}r" 3334 "$SCRAPES"
scrape "${tag}n" 9100 "$SCRAPES"
sleep 1
rs_after=$(rss_kb "$rpid")
ne_after=$(rss_kb "$npid")

rs_size=$(size_mb "$work/rsagent")
ne_size=$(size_mb "$NE")
ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\nfootprint: idle %d s, %d runs each, %d scrapes (fresh namespaces)\n\n' "$IDLE" "$N" "$SCRAPES"
printf '| figure | rsagent | node_exporter | ratio | target |\n|---|---|---|---|---|\n'
printf '| stripped binary (MB) | %s | %s | %s | rsagent <= 20 |\n' "$rs_size" "$ne_size" "$(ratio "$rs_size" "$ne_size")"
printf '| idle RSS, load report + test service (MB) | %s | %s | %s | rsagent <= 12 |\n' "$(mb "$rs_idle")" "$(mb "$ne_idle")" "$(ratio "$rs_idle" "$ne_idle")"
printf '| --version, median wall (ms) | %s | %s | %s | rsagent <= 3 |\n' "$rs_version" "$ne_version" "$(ratio "$rs_version" "$ne_version")"
printf '| weight (refused), median wall (ms) | %s | - | - | - |\n' "$rs_weight"
printf '| RSS growth after %d scrapes (MB) | %s | %s | - | rsagent <= 1 |\n' "$SCRAPES" "$(mb $((rs_after - rs_idle)))" "$(mb $((ne_after - ne_idle)))"
bench_row "stripped binary" MB "$rs_size" "node_exporter" "$ne_size" "rsagent <= 20"
bench_row "idle RSS, load report + test service" MB "$(mb "$rs_idle")" "node_exporter" "$(mb "$ne_idle")" "rsagent <= 12"
bench_row "--version, median wall" ms "$rs_version" "node_exporter --version" "$ne_version" "rsagent <= 3"
bench_row "RSS growth after $SCRAPES scrapes" MB "$(mb $((rs_after - rs_idle)))" "node_exporter" "$(mb $((ne_after - ne_idle)))" "rsagent <= 1"
