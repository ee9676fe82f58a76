#!/usr/bin/env bash
# Benchmark: `rsagent check` with V VIPs x C clients (2 x V x C route-gets: the inbound lookup
# arriving on the facing interface and the reply path) against the same lookups made by spawning
# `ip route get`, in the same run, in a fresh namespace. Usage: bench/check.sh [V=100] [C=10]
set -euo pipefail
cd "$(dirname "$0")/.."
V=${1:-100}
C=${2:-10}
# shellcheck source=lib.sh
. bench/lib.sh
bench_setup check.sh
ns=${tag}c
make_realserver_netns "$ns"
{ echo "mode: dr"; echo "state_dir: $work/state"; echo "vips:"
  for ((i = 1; i <= V; i++)); do echo "  - 198.18.$((i / 250)).$((i % 250 + 1))"; done; } >"$work/profile.yaml"
"$BIN" apply --netns "$ns" -c "$work/profile.yaml" >/dev/null
clients=(); for ((j = 1; j <= C; j++)); do clients+=("203.0.113.$j"); done
args=(); for c in "${clients[@]}"; do args+=(--client "$c"); done

now() { date +%s%N; }
t0=$(now); "$BIN" check --netns "$ns" -c "$work/profile.yaml" "${args[@]}" --json >"$work/check.json"; t1=$(now)
lookups=$(grep -c '"route\.' "$work/check.json" || true)
t2=$(now)
for ((i = 1; i <= V; i++)); do
  vip="198.18.$((i / 250)).$((i % 250 + 1))"
  for c in "${clients[@]}"; do
    ip -n "$ns" route get "$vip" from "$c" iif veth0 >/dev/null
    ip -n "$ns" route get "$c" from "$vip" >/dev/null
  done
done
t3=$(now)
rs=$(( (t1 - t0) / 1000000 )); ip=$(( (t3 - t2) / 1000000 ))
printf '\nrsagent check benchmark: %d VIPs x %d clients = %d route-gets (%d route findings)\n\n' "$V" "$C" $((2 * V * C)) "$lookups"
printf '| work | rsagent check | peer | peer is | ratio | target |\n|---|---|---|---|---|---|\n'
printf '| %d route-gets (ms) | %d | %d | %d x ip route get | %s | <= 0.02 |\n' $((2 * V * C)) "$rs" "$ip" $((2 * V * C)) "$(echo "scale=4; $rs / $ip" | bc)"
bench_row "check: $((2 * V * C)) route-gets" ms "$rs" "ip route get, one process each" "$ip" "ratio <= 0.02"
