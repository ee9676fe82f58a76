# Sourced by bench/ and tests/vm/: a network namespace shaped like a realserver — lo up, veth0
# holding the RIP 10.99.0.2/24 with a default route via 10.99.0.1 (its peer veth1 stays in the
# same namespace). The Swift tests build the same shape in Tests/NamespaceTests/Harness.swift.
make_realserver_netns() {
  ip netns add "$1"
  ip -n "$1" link set lo up
  ip -n "$1" link add veth0 type veth peer name veth1
  ip -n "$1" addr add 10.99.0.2/24 dev veth0
  ip -n "$1" link set veth0 up
  ip -n "$1" link set veth1 up
  ip -n "$1" route add default via 10.99.0.1
}
