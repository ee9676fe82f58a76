#!/usr/bin/env bash
# Benchmark: the test service against its peers, in one run in a fresh namespace.
#   plain TCP: connections/s of connect → read the line → close, from a small C client with
#     T threads, against openbsd-inetd running the classic shell script on port 31337.
#   HTTP: requests/s with wrk (one thread, C connections), keep-alive and `Connection: close`,
#     against nginx-light with one worker answering a fixed `return 200`.
# Usage: bench/testservice.sh [SECONDS=5] [T=4] [C=32]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
THREADS=${2:-4}
CONNS=${3:-32}
# shellcheck source=lib.sh
. bench/lib.sh
bench_setup testservice.sh
for t in inetd nginx wrk gcc; do
  command -v $t >/dev/null || [ -x /usr/sbin/$t ] || {
    echo "bench/testservice.sh: needs $t (apt-get install openbsd-inetd nginx-light wrk gcc)" >&2
    exit 1
  }
done
ns=${tag}r
make_realserver_netns "$ns"

# The connection-rate client: each thread connects, reads until the server closes, closes.
cat >"$work/tcpconn.c" <<'EOF'
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static struct sockaddr_in to;
static double until;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static void *run(void *arg) {
  long *ok = arg; char buf[512];
  while (now() < until) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) == 0) {
      ssize_t n, got = 0;
      while ((n = read(fd, buf, sizeof buf)) > 0) got += n;
      if (got > 0) (*ok)++;
    }
    close(fd);
  }
  return NULL;
}
int main(int argc, char **argv) {
  int port = atoi(argv[1]), threads = atoi(argv[2]); double secs = atof(argv[3]);
  to.sin_family = AF_INET; to.sin_port = htons(port); inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  pthread_t th[64]; long ok[64] = {0}; double start = now(); until = start + secs;
  for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, run, &ok[i]);
  long total = 0;
  for (int i = 0; i < threads; i++) { pthread_join(th[i], NULL); total += ok[i]; }
  printf("%.0f\n", total / (now() - start));
  return 0;
}
EOF
gcc -O2 -pthread -o "$work/tcpconn" "$work/tcpconn.c"

# rsagent run with the test service.
printf 'mode: dr\nvips: [192.0.2.100]\ntest_service: { port: 31337, http_port: 31380 }\nstate_dir: %s/state\n' \
  "$work" >"$work/profile.yaml"
start_daemon "$ns"

# inetd with the classic script (a fork and a shell per connection), on 31338.
cat >"$work/lvs-info.sh" <<'EOF'
#!/bin/sh
echo "rsagent test: host=$(hostname) mode=dr"
EOF
chmod +x "$work/lvs-info.sh"
echo "127.0.0.1:31338 stream tcp nowait.1000000 root $work/lvs-info.sh lvs-info.sh" >"$work/inetd.conf"
setsid ip netns exec "$ns" inetd -d "$work/inetd.conf" >"$work/inetd.log" 2>&1 &
pids+=($!)

# nginx-light, one worker, a fixed answer, on 31381.
mkdir -p "$work/nginx"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:31381;
    location / { default_type text/plain; return 200 "rsagent test: host=rs1 rip=10.99.0.2 local=127.0.0.1:31381 client=127.0.0.1:1 mode=dr\n"; }
  }
}
EOF
setsid ip netns exec "$ns" nginx -c "$work/nginx.conf" -g "daemon off;" 2>>"$work/nginx/error.log" &
pids+=($!)
sleep 1

in_ns() { ip netns exec "$ns" "$@"; }
rs_tcp=$(in_ns "$work/tcpconn" 31337 "$THREADS" "$SECS")
inetd_tcp=$(in_ns "$work/tcpconn" 31338 "$THREADS" "$SECS")
wrk_rate() { # $1 port, rest: extra wrk arguments
  local port=$1
  shift
  in_ns wrk -t1 -c"$CONNS" -d"${SECS}s" "$@" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}
rs_ka=$(wrk_rate 31380)
ng_ka=$(wrk_rate 31381)
rs_close=$(wrk_rate 31380 -H "Connection: close")
ng_close=$(wrk_rate 31381 -H "Connection: close")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "bench/testservice.sh: ${SECS}s each, $THREADS client threads (TCP), wrk -t1 -c$CONNS (HTTP)"
printf '%-36s %10s %10s %8s %s\n' "work" "rsagent" "peer" "ratio" "(target)"
printf '%-36s %10s %10s %8s %s\n' "TCP connections/s vs inetd + sh" "$rs_tcp" "$inetd_tcp" "$(ratio "$rs_tcp" "$inetd_tcp")" "(>= 20)"
printf '%-36s %10s %10s %8s %s\n' "HTTP keep-alive req/s vs nginx" "$rs_ka" "$ng_ka" "$(ratio "$rs_ka" "$ng_ka")" "(>= 0.8)"
printf '%-36s %10s %10s %8s %s\n' "HTTP Connection: close req/s vs nginx" "$rs_close" "$ng_close" "$(ratio "$rs_close" "$ng_close")" "(>= 0.8)"
bench_row "test service, TCP" "conn/s" "$rs_tcp" "openbsd-inetd + sh" "$inetd_tcp" "ratio >= 20"
bench_row "test service, HTTP keep-alive" "req/s" "$rs_ka" "nginx-light, 1 worker" "$ng_ka" "ratio >= 0.8"
bench_row "test service, HTTP close" "req/s" "$rs_close" "nginx-light, 1 worker" "$ng_close" "ratio >= 0.8"
