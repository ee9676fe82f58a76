# Holds N TCP connections to 192.0.2.100:8080 open, as the benchmarks' clients: `server N`
# accepts them (their sockets have sport 8080 on the VIP: what rsagent counts), `client N` makes
# them. Two processes, each under the usual 20,000-descriptor hard limit. Prints "listening"
# (server), then "ready" once all N are open, and holds them for $HOLD seconds (default 600).
import os, resource, socket, sys, time

role, n = sys.argv[1], int(sys.argv[2])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
if role == "server":
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("192.0.2.100", 8080))
    srv.listen(4096)
    print("listening", flush=True)
    while len(held) < n:
        held.append(srv.accept()[0])
else:
    for i in range(n):
        held.append(socket.create_connection(("192.0.2.100", 8080)))
print("ready", flush=True)
time.sleep(float(os.environ.get("HOLD", "600")))
