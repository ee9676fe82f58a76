#!/usr/bin/env bash
# The Ansible role, run for real by ansible-playbook against localhost on a fresh machine (run by
# scripts/test-package through ../shared/tools/fresh-machine, as root):
#   tests/deploy/ansible.sh PACKAGE.deb
# The realserver is a network namespace this script makes; rsagent's commands run inside it
# (rsagent_netns). Checks print "ANSIBLE-TEST: PASS|FAIL".
set -u
deb=$(readlink -f "$1")
pass=0
fail=0
result() {
  if [ "$1" = 0 ]; then echo "ANSIBLE-TEST: PASS $2"; pass=$((pass + 1)); else echo "ANSIBLE-TEST: FAIL $2"; fail=$((fail + 1)); fi
}
export DEBIAN_FRONTEND=noninteractive ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1
apt-get update -qq
apt-get install -y -qq --no-install-recommends ansible-core >/dev/null
ip netns add ansrs
ip -n ansrs link set lo up
ip -n ansrs link add eth0 type veth peer name eth1
ip -n ansrs addr add 10.97.0.2/24 dev eth0
ip -n ansrs link set eth0 up
ip -n ansrs link set eth1 up
ip -n ansrs route add default via 10.97.0.1
cd deploy/ansible
play() { ansible-playbook -i localhost, tests/test.yml -e "rsagent_deb=$deb" -e rsagent_netns=ansrs "$@" >/tmp/play.log 2>&1; }

play
result $? "the role installs the package, writes the profile, applies it in the namespace and check passes"
grep -E "ok=|failed=" /tmp/play.log | tail -1
ip -n ansrs addr show dev lo | grep -q 192.0.2.161/32
result $? "the VIPs are on lo in the namespace"
play
result $? "a second run succeeds"
grep -qE "localhost +: ok=[0-9]+ +changed=0 " /tmp/play.log
result $? "a second run changes nothing"
grep -E "ok=|failed=" /tmp/play.log | tail -1
# A profile rsagent refuses (the VIP is this host's own address): validate stops the play, and
# the running profile stays.
cp /etc/rsagent/rsagent.yaml /tmp/profile.before
play -e '{"rsagent_vips": ["10.97.0.2"]}'
[ $? -ne 0 ] && grep -q "this host's own address" /tmp/play.log && cmp -s /etc/rsagent/rsagent.yaml /tmp/profile.before
result $? "a profile rsagent refuses fails the play at validate and leaves the old one"
rsagent down --netns ansrs -c /etc/rsagent/rsagent.yaml >/dev/null
ip netns del ansrs
echo "ANSIBLE-TEST: $pass checks passed, $fail failed"
[ "$fail" -eq 0 ]
