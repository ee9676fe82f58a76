#!/usr/bin/env python3
"""Abuse every TCP listener of a running `rsagent run` while a well-behaved reader polls /load.

Run inside the daemon's network namespace (the test does `ip netns exec NS python3 abuse.py`).
For DURATION seconds, against each port in --ports, at once:
  - 1,000 idle connections, opened and never written to;
  - 1 MB request lines (with and without a final newline);
  - random bytes;
  - half-open connections: a partial request, then shutdown(SHUT_WR), never read;
  - stalled requests: a partial request head, then silence;
  - slowloris: --slow connections that each trickle one more header byte every 0.5 s.
All of that comes from --host's own address (127.0.0.1): one client. Meanwhile one reader — a
director at another address (--reader-source, 127.0.0.2) — does GET /load on --load (a fresh
connection each time, every 20 ms) and records its latency. Prints one JSON line: latency
percentiles, reader failures, and what the abusers managed. Bounded: every loop stops at the
deadline; every socket is closed at the end.
"""
import argparse, json, multiprocessing, random, resource, socket, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--ports", required=True, help="comma-separated TCP ports to abuse")
ap.add_argument("--load", type=int, required=True, help="the load report's HTTP port")
ap.add_argument("--duration", type=float, default=10)
ap.add_argument("--idle", type=int, default=1000)
ap.add_argument("--slow", type=int, default=300, help="slowloris connections per port")
ap.add_argument("--reader-source", default="127.0.0.2")
args = ap.parse_args()

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
deadline = time.monotonic() + args.duration
ports = [int(p) for p in args.ports.split(",")]
held, lock = [], threading.Lock()
stats = {"idle_open": 0, "idle_failed": 0, "big_lines": 0, "random": 0, "half_open": 0, "stalled": 0,
         "slow_opened": 0, "slow_cut": 0}


def count(key, n=1):
    with lock:
        stats[key] += n


def connect(port, timeout=2):
    s = socket.create_connection((args.host, port), timeout=timeout)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x00" * 8)
    return s


def idle(port):
    for _ in range(args.idle):
        if time.monotonic() > deadline:
            return
        try:
            s = connect(port)
            with lock:
                held.append(s)
            count("idle_open")
        except OSError:
            count("idle_failed")


def big_lines(port):
    line = b"GET /" + b"a" * (1 << 20)
    while time.monotonic() < deadline:
        for tail in (b"", b" HTTP/1.1\r\n\r\n"):
            try:
                s = connect(port)
                s.settimeout(2)
                s.sendall(line + tail)
                s.recv(4096)
                s.close()
            except OSError:
                pass  # a reset once the server has had enough is the right answer
            count("big_lines")
        time.sleep(0.05)


def random_bytes(port):
    rng = random.Random(port)
    while time.monotonic() < deadline:
        try:
            s = connect(port)
            s.settimeout(2)
            s.sendall(rng.randbytes(rng.choice([1, 100, 4096, 65536])))
            s.recv(4096)
            s.close()
        except OSError:
            pass
        count("random")
        time.sleep(0.01)


def half_open(port):
    while time.monotonic() < deadline:
        try:
            s = connect(port)
            s.sendall(b"GET /load HTTP/1.1\r\nHost: x")
            s.shutdown(socket.SHUT_WR)
            with lock:
                held.append(s)
            count("half_open")
        except OSError:
            pass
        time.sleep(0.02)


def stalled(port):
    """Partial request heads, then nothing more: the header deadline must end them."""
    while time.monotonic() < deadline:
        try:
            s = connect(port)
            s.sendall(b"GET /load HTTP/1.1\r\nHost: x\r\n")
            with lock:
                held.append(s)
            count("stalled")
        except OSError:
            pass
        time.sleep(0.02)


def slowloris(port):
    """--slow connections, each sending one more byte of an endless header every 0.5 s; a
    connection the server cut is replaced. Counts the cuts (the header deadline at work)."""
    live = []
    while time.monotonic() < deadline:
        while len(live) < args.slow and time.monotonic() < deadline:
            try:
                s = connect(port)
                s.setblocking(False)
                s.send(b"GET /load HTTP/1.1\r\nX-a: ")
                live.append(s)
                count("slow_opened")
            except OSError:
                break
        for s in list(live):
            try:
                s.send(b"a")
            except OSError:
                live.remove(s)
                s.close()
                count("slow_cut")
        time.sleep(0.5)
    with lock:
        held.extend(live)


def reader(out):
    """In a process of its own, so the abusers' threads cannot delay it (Python's GIL)."""
    latencies, failures = [], []
    while time.monotonic() < deadline:
        t = time.monotonic()
        try:
            s = socket.create_connection((args.host, args.load), timeout=5, source_address=(args.reader_source, 0))
            s.sendall(b"GET /load HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            if not data.startswith(b"HTTP/1.1 200"):
                failures.append(data[:40].decode("latin-1") or "closed without an answer")
            else:
                latencies.append(time.monotonic() - t)
        except OSError as e:
            failures.append(str(e))
        time.sleep(0.02)
    out.put((latencies, failures))


results = multiprocessing.Queue()
polling = multiprocessing.Process(target=reader, args=(results,))
polling.start()
threads = []
for p in ports:
    threads += [threading.Thread(target=f, args=(p,))
                for f in (idle, big_lines, random_bytes, half_open, stalled, slowloris)]
for t in threads:
    t.start()
for t in threads:
    t.join()
latencies, failures = results.get()
polling.join()
for s in held:
    s.close()
latencies.sort()
pct = lambda q: round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else None
print(json.dumps({"reads": len(latencies), "failures": failures[:5], "failed": len(failures),
                  "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0), **stats}))
