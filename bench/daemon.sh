#!/usr/bin/env bash
# Benchmark: the daemon's repair latency and idle cost, against its natural peer — the
# hand-rolled watcher an operator would write: `ip monitor address | ... ip addr replace VIP`.
# Both run in fresh network namespaces in the same run.
#   repair latency: from an external `ip addr del` of the VIP to the kernel's RTM_NEWADDR of the
#   re-added VIP, both taken from `ip -ts monitor` timestamps; N deletions, one at a time.
#   idle cost: RSS and CPU time over IDLE seconds with nothing happening.
# Usage: bench/daemon.sh [N=200] [IDLE=60]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
IDLE=${2:-60}
# shellcheck source=lib.sh
. bench/lib.sh
bench_setup daemon.sh
VIP=192.0.2.100

# $1 namespace: delete the VIP N times, each time waiting until it is back; prints latencies (ms).
measure() {
  local ns=$1 mon=$work/$1.monitor
  ip -n "$ns" -ts monitor address >"$mon" 2>/dev/null &
  local monpid=$!
  sleep 0.3
  for ((i = 0; i < N; i++)); do
    ip -n "$ns" addr del $VIP/32 dev lo
    for ((t = 0; t < 400; t++)); do   # up to 2 s
      ip -n "$ns" -4 addr show dev lo | grep -q " $VIP/32 " && break
      sleep 0.005
    done
  done
  sleep 0.2
  kill $monpid
  # Pair each "Deleted ... VIP" with the next add of the VIP.
  awk -v vip="$VIP/32" '
    function t(s) { gsub(/[\[\]]/, "", s); split(s, a, "T"); split(a[2], b, ":"); return b[1]*3600 + b[2]*60 + b[3] }
    index($0, vip) && /Deleted/ { d = t($1); next }
    index($0, vip) && d > 0 { printf "%.3f\n", (t($1) - d) * 1000; d = 0 }' "$mon"
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f %d\n", a[int((NR+1)/2)], a[int(NR*0.99 + 0.999)], NR}'; }

# rsagent run
make_realserver_netns "${tag}r"
printf 'mode: dr\nvips: [%s]\nstate_dir: %s/state\n' $VIP "$work" >"$work/profile.yaml"
start_daemon "${tag}r"
dpid=$daemon_pid
read -r rs_med rs_p99 rs_n < <(measure "${tag}r" | stats)

# the hand-rolled peer
make_realserver_netns "${tag}p"
ip -n "${tag}p" addr add $VIP/32 dev lo
setsid bash -c "ip -n ${tag}p monitor address | grep --line-buffered 'Deleted.* $VIP/32' | while read -r _; do
    ip -n ${tag}p addr replace $VIP/32 dev lo; done" &
pids+=($!)
sleep 0.3
read -r pe_med pe_p99 pe_n < <(measure "${tag}p" | stats)

# idle cost of the daemon, and of the peer's `ip monitor` process
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
mpid=$(pgrep -f "ip -n ${tag}p monitor address" | head -n1)
c0=$(cpu $dpid); m0=$(cpu "$mpid"); sleep "$IDLE"; c1=$(cpu $dpid); m1=$(cpu "$mpid")
hz=$(getconf CLK_TCK)
rs_rss=$(rss $dpid); pe_rss=$(rss "$mpid")
rs_cpu=$(echo "scale=3; ($c1 - $c0) * 100 / $hz / $IDLE" | bc)
pe_cpu=$(echo "scale=3; ($m1 - $m0) * 100 / $hz / $IDLE" | bc)
ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\nrsagent run benchmark: %d VIP deletions each, idle %d s (fresh namespaces)\n\n' "$N" "$IDLE"
printf '| work | rsagent run | peer | peer is | ratio | target |\n|---|---|---|---|---|---|\n'
printf '| repair latency, median (ms) | %s | %s | ip monitor + ip addr replace | %s | <= 50 |\n' "$rs_med" "$pe_med" "$(ratio "$rs_med" "$pe_med")"
printf '| repair latency, p99 (ms) | %s | %s | same | %s | <= 200 |\n' "$rs_p99" "$pe_p99" "$(ratio "$rs_p99" "$pe_p99")"
printf '| repairs measured | %s | %s | | | %s |\n' "$rs_n" "$pe_n" "$N"
printf '| idle RSS (MB) | %s | %s | the ip monitor process | %s | <= 15 |\n' "$(echo "scale=1; $rs_rss/1024" | bc)" "$(echo "scale=1; $pe_rss/1024" | bc)" "$(ratio "$rs_rss" "$pe_rss")"
printf '| idle CPU (%% of a core) | %s | %s | the ip monitor process | - | <= 0.2 |\n' "$rs_cpu" "$pe_cpu"
bench_row "repair latency, median" ms "$rs_med" "ip monitor + ip addr replace" "$pe_med" "rsagent <= 50"
bench_row "repair latency, p99" ms "$rs_p99" "ip monitor + ip addr replace" "$pe_p99" "rsagent <= 200"
bench_row "idle RSS" MB "$(echo "scale=1; $rs_rss/1024" | bc)" "ip monitor" "$(echo "scale=1; $pe_rss/1024" | bc)" "rsagent <= 15"
bench_row "idle CPU" "% of a core" "$rs_cpu" "ip monitor" "$pe_cpu" "rsagent <= 0.2"
