#!/usr/bin/env bash
# Benchmark: `rsagent drain --wait`, against what an operator does without it — in one run, on
# the same N held connections, in a fresh namespace.
#   CPU while waiting: `drain --wait` and `watch -n1 'ss -Htn state established … | wc -l'`
#     side by side for SECS seconds with N connections open (utime + stime, the watch's reaped
#     children included).
#   return after the last close: the client holding the connections is killed; from the
#     moment it is gone (the kernel has closed them all) to `drain --wait` exiting, against the
#     shell loop `until [ "$(ss … | wc -l)" -eq 0 ]; do sleep 1; done` that would end a script.
# Usage: bench/drain.sh [N=19000] [SECS=20]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-19000}
SECS=${2:-20}
# shellcheck source=lib.sh
. bench/lib.sh
bench_setup drain.sh
command -v watch >/dev/null || { echo "bench/drain.sh: needs watch (apt-get install procps)" >&2; exit 1; }
ns=${tag}r
make_realserver_netns "$ns"
cat >"$work/profile.yaml" <<EOF2
mode: dr
vips:
  - address: 192.0.2.100
    services: [tcp/8080]
state_dir: $work/state
EOF2
start_daemon "$ns"
hold_connections "$ns" "$N"

filter='( sport = :8080 )'
"$BIN" drain --wait --timeout 600 --netns "$ns" --socket "$work/state/admin.sock" >"$work/drain.out" 2>&1 &
drain=$!
pids+=($!)
TERM=xterm setsid ip netns exec "$ns" watch -n1 "ss -Htn state established '$filter' | wc -l" >/dev/null 2>&1 &
watcher=$!
pids+=($!)
setsid ip netns exec "$ns" bash -c "until [ \"\$(ss -Htn state established '$filter' | wc -l)\" -eq 0 ]; do sleep 1; done; echo \$EPOCHREALTIME" >"$work/loop.out" 2>&1 &
loop=$!
pids+=($!)
# CPU seconds of a process, with its reaped children (fields 14–17 of /proc/PID/stat).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15 + $16 + $17) / hz}' "/proc/$1/stat"; }
sleep 1
rs0=$(cpu "$drain") w0=$(cpu "$watcher")
sleep "$SECS"
rs1=$(cpu "$drain") w1=$(cpu "$watcher")
kill "$watcher" 2>/dev/null || true
rs_cpu=$(awk -v a="$rs0" -v b="$rs1" -v s="$SECS" 'BEGIN {printf "%.2f", (b - a) / s * 100}')
w_cpu=$(awk -v a="$w0" -v b="$w1" -v s="$SECS" 'BEGIN {printf "%.2f", (b - a) / s * 100}')

# The last close: the client process gone means every connection it held is closed.
kill -9 "$hold_client"
wait "$hold_client" 2>/dev/null || true
closed=$EPOCHREALTIME
wait "$drain" || { echo "bench/drain.sh: drain --wait failed: $(cat "$work/drain.out")" >&2; exit 1; }
returned=$EPOCHREALTIME
wait "$loop" || true
looped=$(cat "$work/loop.out")
rs_ms=$(awk -v a="$closed" -v b="$returned" 'BEGIN {d = (b - a) * 1000; printf "%.0f", (d < 0) ? 0 : d}')
loop_ms=$(awk -v a="$closed" -v b="$looped" 'BEGIN {d = (b - a) * 1000; printf "%.0f", (d < 0) ? 0 : d}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}'; }
echo "bench/drain.sh: $N established connections on 192.0.2.100:8080; $(tail -1 "$work/drain.out")"
printf '%-52s %10s %10s %8s %s\n' "work" "rsagent" "peer" "ratio" "(target)"
printf '%-52s %8s %% %8s %% %8s %s\n' "CPU waiting on $N connections vs watch -n1 ss|wc -l" "$rs_cpu" "$w_cpu" "$(ratio "$rs_cpu" "$w_cpu")" "(<= 1.5)"
printf '%-52s %7s ms %7s ms %8s %s\n' "return after the last close vs until ss|wc -l loop" "$rs_ms" "$loop_ms" "$(ratio "$rs_ms" "$loop_ms")" "(rsagent <= 1000 ms)"
bench_row "drain --wait CPU, $N connections" "% CPU" "$rs_cpu" "watch -n1 'ss … | wc -l'" "$w_cpu" "ratio <= 1.5"
bench_row "drain --wait return after the last close" ms "$rs_ms" "until ss … | wc -l = 0; sleep 1" "$loop_ms" "rsagent <= 1000"
