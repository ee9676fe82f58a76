#!/usr/bin/env bash
# Benchmark: rsagent apply / re-apply / status with N VIPs on lo, against iproute2 doing the same
# work in the same run. Each case runs in its own fresh network namespace; nothing touches the
# host's. Prints a table with the ratio rsagent / peer. Usage: bench/apply.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
RUNS=${2:-5}
# shellcheck source=lib.sh
. bench/lib.sh
bench_setup apply.sh
ms() { echo "scale=1; ($2 - $1) / 1000000" | bc; }
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# N distinct addresses in 198.18.0.0/15 (the benchmarking range), none ending in .0.
for ((i = 0; i < N; i++)); do echo "198.$((18 + i / 62500)).$(((i / 250) % 250)).$((i % 250 + 1))"; done > "$work/vips"
{ echo "mode: dr"; echo "state_dir: $work/state"; echo "vips:"; sed 's/^/  - /' "$work/vips"; } > "$work/profile.yaml"
sed 's#^#addr add #; s#$#/32 dev lo#' "$work/vips" > "$work/batch"

apply_ip=(); apply_rs=(); noop_rs=(); dump_ip=(); status_rs=(); json_rs=()
for ((r = 1; r <= RUNS; r++)); do
  make_realserver_netns "${tag}i$r"; make_realserver_netns "${tag}r$r"
  t0=$(now); ip -n "${tag}i$r" -batch "$work/batch"; t1=$(now); apply_ip+=("$(ms "$t0" "$t1")")
  t0=$(now); "$BIN" apply --netns "${tag}r$r" -c "$work/profile.yaml" >/dev/null; t1=$(now); apply_rs+=("$(ms "$t0" "$t1")")
  t0=$(now); "$BIN" apply --netns "${tag}r$r" -c "$work/profile.yaml" >/dev/null; t1=$(now); noop_rs+=("$(ms "$t0" "$t1")")
  t0=$(now); "$BIN" status --netns "${tag}r$r" -c "$work/profile.yaml" >/dev/null; t1=$(now); status_rs+=("$(ms "$t0" "$t1")")
  t0=$(now); "$BIN" status --json --netns "${tag}r$r" -c "$work/profile.yaml" >/dev/null; t1=$(now); json_rs+=("$(ms "$t0" "$t1")")
  t0=$(now); ip -n "${tag}r$r" addr show >/dev/null; t1=$(now); dump_ip+=("$(ms "$t0" "$t1")")
  "$BIN" down --netns "${tag}r$r" -c "$work/profile.yaml" >/dev/null
  ip netns del "${tag}i$r"; ip netns del "${tag}r$r"
done
m() { printf '%s\n' "$@" | median; }
a_ip=$(m "${apply_ip[@]}"); a_rs=$(m "${apply_rs[@]}"); n_rs=$(m "${noop_rs[@]}"); s_rs=$(m "${status_rs[@]}"); j_rs=$(m "${json_rs[@]}"); d_ip=$(m "${dump_ip[@]}")
ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\nrsagent apply benchmark: %d VIPs on lo, median of %d runs, each in fresh namespaces (ms)\n\n' "$N" "$RUNS"
printf '| work | rsagent | peer | peer is | ratio | target |\n|---|---|---|---|---|---|\n'
printf '| apply %d VIPs | %s | %s | ip -batch (same adds) | %s | <= 1.10 |\n' "$N" "$a_rs" "$a_ip" "$(ratio "$a_rs" "$a_ip")"
printf '| no-op re-apply | %s | %s | ip addr show (reading the same state) | %s | <= 30 ms |\n' "$n_rs" "$d_ip" "$(ratio "$n_rs" "$d_ip")"
printf '| status | %s | %s | ip addr show | %s | <= 50 ms |\n' "$s_rs" "$d_ip" "$(ratio "$s_rs" "$d_ip")"
printf '| status --json | %s | %s | ip addr show | %s | - |\n' "$j_rs" "$d_ip" "$(ratio "$j_rs" "$d_ip")"
bench_row "apply $N VIPs" ms "$a_rs" "ip -batch, same adds" "$a_ip" "ratio <= 1.10"
bench_row "no-op re-apply, $N VIPs" ms "$n_rs" "ip addr show" "$d_ip" "rsagent <= 30"
bench_row "status, $N VIPs" ms "$s_rs" "ip addr show" "$d_ip" "rsagent <= 50"
