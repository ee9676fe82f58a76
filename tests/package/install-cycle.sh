#!/usr/bin/env bash
# The Debian package's life on a machine where rsagent is not installed (run by
# scripts/test-package on a fresh machine, as root): install, what installing leaves, `rsagent
# lab` from the package, an upgrade under traffic, remove, purge, reinstall.
#   tests/package/install-cycle.sh OLD.deb NEW.deb
# Everything that changes the network happens in namespaces this script makes; the machine's own
# network is only read (before and after the install). Every check prints "PKG-TEST: PASS|FAIL".
set -u
old=$(readlink -f "$1")
new=$(readlink -f "$2")
pass=0
fail=0
check() {
  local name=$1
  shift
  if "$@" >/tmp/pkgcheck.out 2>&1; then
    echo "PKG-TEST: PASS $name"
    pass=$((pass + 1))
  else
    echo "PKG-TEST: FAIL $name"
    sed 's/^/    /' /tmp/pkgcheck.out | tail -20
    fail=$((fail + 1))
  fi
}
export DEBIAN_FRONTEND=noninteractive
host_network() { ip -o addr show; ip -o link show; cat /proc/sys/net/ipv4/conf/*/arp_ignore /proc/sys/net/ipv4/conf/*/rp_filter; }

# --- install on a machine with no Swift toolchain: apt fetches libnl, libyaml, arping, ipvsadm ---
before=$(host_network)
apt-get update -qq
check "apt-get install ./$(basename "$old")" apt-get install -y -qq "$old"
after=$(host_network)
check "installing changed nothing on this machine's network" test "$before" = "$after"
check "rsagent --version is the package's" bash -c "[ \"\$(rsagent --version)\" = \"$(dpkg-deb -f "$old" Version | cut -d+ -f1)\" ]"
check "the binary needs no Swift library" bash -c "! ldd /usr/bin/rsagent | grep -Ei 'not found|swift'"
check "unit: /usr/bin/rsagent, only with /etc/rsagent/rsagent.yaml" bash -c \
  "grep -q '^ExecStart=/usr/bin/rsagent run -c /etc/rsagent/rsagent.yaml' /lib/systemd/system/rsagent.service && grep -q '^ConditionPathExists=/etc/rsagent/rsagent.yaml' /lib/systemd/system/rsagent.service"
check "man page, bash completion, docs" bash -c \
  "has() { [ -e \"\$1\" ]; }; has /usr/share/man/man8/rsagent.8.gz && has /usr/share/bash-completion/completions/rsagent && has /usr/share/doc/rsagent/README.md.gz && has /usr/share/doc/rsagent/copyright"
check "example profiles are conffiles" bash -c "dpkg-query -W -f='\${Conffiles}' rsagent | grep -q /etc/rsagent/profiles/dr-lo.yaml"
check "rsagent lab from the installed package" rsagent lab -n 16

# --- an upgrade under traffic: a real service on the VIP answers every connection throughout ---
ip netns add pkrs
ip netns add pkcl
ip -n pkrs link set lo up
ip -n pkcl link set lo up
ip link add pkv0 netns pkrs type veth peer name pkv1 netns pkcl
ip -n pkrs link set pkv0 name eth0
ip -n pkcl link set pkv1 name eth0
ip -n pkrs addr add 10.98.0.2/24 dev eth0
ip -n pkcl addr add 10.98.0.1/24 dev eth0
ip -n pkrs link set eth0 up
ip -n pkcl link set eth0 up
ip -n pkrs route add default via 10.98.0.1
# The client reaches the VIP through the realserver's own address, as a DR director sends it.
ip -n pkcl route add 192.0.2.150/32 via 10.98.0.2
cat >/etc/rsagent/rsagent.yaml <<'EOF'
mode: dr
vips:
  - address: 192.0.2.150
    services: [tcp/8080]
EOF
rsagent run --netns pkrs -c /etc/rsagent/rsagent.yaml 2>/tmp/pkdaemon.log &
daemon=$!
for _ in $(seq 100); do grep -q "running: watching" /tmp/pkdaemon.log && break; sleep 0.1; done
# The real service: answers "ok" on every address of the realserver, port 8080.
ip netns exec pkrs python3 -c '
import socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self): self.request.sendall(b"ok\n")
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", 8080), H).serve_forever()' &
service=$!
sleep 0.5
# Connections every 10 ms until /tmp/pkstop appears (at most 60 s): answered and failed.
rm -f /tmp/pkstop
ip netns exec pkcl python3 -c '
import json, os, socket, time
ok = failed = 0
end = time.monotonic() + 60
while time.monotonic() < end and not os.path.exists("/tmp/pkstop"):
    try:
        s = socket.create_connection(("192.0.2.150", 8080), timeout=2)
        ok += s.recv(16) == b"ok\n"
        s.close()
    except OSError:
        failed += 1
    time.sleep(0.01)
print(json.dumps({"answered": ok, "failed": failed}))' >/tmp/pkprobe.json &
prober=$!
sleep 1
echo "# edited by the admin" >>/etc/rsagent/profiles/dr-lo.yaml
check "upgrade: apt-get install ./$(basename "$new") (keeping the edited conffile)" \
  apt-get install -y -qq -o Dpkg::Options::=--force-confold "$new"
# What systemd does for postinst's try-restart: stop (on_stop: keep leaves the VIPs), start.
kill -TERM "$daemon"
wait "$daemon"
rsagent run --netns pkrs -c /etc/rsagent/rsagent.yaml 2>>/tmp/pkdaemon.log &
daemon=$!
sleep 2
touch /tmp/pkstop
wait "$prober"
check "upgrade: the VIP's service answered every connection ($(cat /tmp/pkprobe.json))" python3 -c \
  'import json; r = json.load(open("/tmp/pkprobe.json")); exit(not (r["failed"] == 0 and r["answered"] > 100))'
check "upgrade: the new version runs" bash -c "[ \"\$(dpkg-query -W -f='\${Version}' rsagent)\" = \"$(dpkg-deb -f "$new" Version)\" ]"
check "upgrade: the edited conffile survived" grep -q "edited by the admin" /etc/rsagent/profiles/dr-lo.yaml
kill "$service" 2>/dev/null
kill -TERM "$daemon"
wait "$daemon"

# --- remove: what rsagent added goes with it (prerm runs rsagent down, here in the namespace) ---
check "the VIP is still there after the daemon stopped (on_stop: keep)" bash -c "ip -n pkrs addr show dev lo | grep -q 192.0.2.150/32"
check "remove (run inside the namespace, where prerm's rsagent down acts)" ip netns exec pkrs apt-get remove -y -qq rsagent
check "remove: the VIP is gone and arp_ignore restored" bash -c \
  "! ip -n pkrs addr show dev lo | grep -q 192.0.2.150 && [ \$(ip netns exec pkrs cat /proc/sys/net/ipv4/conf/eth0/arp_ignore) = 0 ]"
check "remove: the binary is gone, the conffiles stay" bash -c "hasnt() { [ ! -e \"\$1\" ]; }; hasnt /usr/bin/rsagent && [ -e /etc/rsagent/profiles/dr-lo.yaml ]"
check "purge: conffiles and /var/lib/rsagent are gone" bash -c \
  "apt-get purge -y -qq rsagent && [ ! -e /etc/rsagent/profiles ] && [ ! -e /var/lib/rsagent ]"
rm -f /etc/rsagent/rsagent.yaml
check "reinstall" bash -c "apt-get install -y -qq '$old' && rsagent --version && apt-get purge -y -qq rsagent"
ip netns del pkrs
ip netns del pkcl
echo "PKG-TEST: $pass checks passed, $fail failed"
[ "$fail" -eq 0 ]
