# Sourced by the benchmarks: root check, the release binary install.sh installs (Swift runtime
# linked statically) in $BIN, a work directory $work, a namespace prefix $tag, the realserver
# namespace helper, and a cleanup on exit that ends background jobs listed in $pids (each
# started with setsid, so their whole process group goes) and deletes the namespaces.
bench_setup() {
  local name=$1
  [ "$(id -u)" = 0 ] || { echo "bench/$name: run as root (it creates network namespaces)" >&2; exit 1; }
  swift build -c release --product rsagent --static-swift-stdlib --scratch-path .build-static >/dev/null
  BIN=$PWD/.build-static/release/rsagent
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
