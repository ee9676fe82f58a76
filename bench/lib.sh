# Sourced by the benchmarks: root check, the release binary install.sh installs (Swift runtime
# linked statically) in $BIN, a work directory $work, a namespace prefix $tag, the realserver
# namespace helper, and a cleanup on exit that ends background jobs listed in $pids (each
# started with setsid, so their whole process group goes) and deletes the namespaces.
bench_setup() {
  local name=$1
  BENCH_NAME=$name
  [ "$(id -u)" = 0 ] || { echo "bench/$name: run as root (it creates network namespaces)" >&2; exit 1; }
  BIN=$(scripts/build-release 2>/dev/null)
  work=$(mktemp -d /tmp/rsagent-bench.XXXXXX)
  tag="rsb$$"
  pids=()
  trap bench_cleanup EXIT
  # shellcheck source=../tests/lib/realserver-netns.sh
  . "$PWD/tests/lib/realserver-netns.sh"
}

bench_cleanup() {
  for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  for n in $(ip netns list | awk '{print $1}' | grep "^$tag" || true); do ip netns del "$n"; done
  rm -rf "$work"
}

# bench_row FIGURE UNIT RSAGENT PEER_NAME PEER TARGET: one figure for bench/run's table, appended
# (tab-separated) to $BENCH_ROWS when bench/run set it. TARGET reads `ratio <= 1.10`,
# `ratio >= 20`, `rsagent <= 30` (in UNIT) or `-`.
bench_row() {
  [ -n "${BENCH_ROWS:-}" ] || return 0
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${BENCH_NAME:-?}" "$1" "$2" "$3" "$4" "$5" "$6" >>"$BENCH_ROWS"
}

# hold_connections NS N: N connections to 192.0.2.100:8080 held open inside NS (bench/hold.py);
# the client's pid (ending it closes them all) in $hold_client.
hold_connections() {
  local ns=$1 n=$2 t
  setsid ip netns exec "$ns" python3 bench/hold.py server "$n" >"$work/server.log" 2>&1 &
  pids+=($!)
  for ((t = 0; t < 100; t++)); do grep -qs listening "$work/server.log" && break; sleep 0.1; done
  setsid ip netns exec "$ns" python3 bench/hold.py client "$n" >"$work/client.log" 2>&1 &
  hold_client=$!
  pids+=($!)
  for ((t = 0; t < 600; t++)); do grep -qs ready "$work/server.log" && break; sleep 0.1; done
  grep -q ready "$work/server.log" || {
    echo "bench/$BENCH_NAME: could not open $n connections: $(cat "$work/server.log" "$work/client.log")" >&2
    exit 1
  }
}

# start_daemon NS [BINARY]: `rsagent run` inside NS with $work/profile.yaml, its log in
# $work/daemon.log; returns once it watches (at most 5 s). Its pid in $daemon_pid.
start_daemon() {
  local t
  setsid "${2:-$BIN}" run --netns "$1" -c "$work/profile.yaml" 2>"$work/daemon.log" &
  daemon_pid=$!
  pids+=($!)
  for ((t = 0; t < 100; t++)); do grep -q "running: watching" "$work/daemon.log" && break; sleep 0.05; done
}
