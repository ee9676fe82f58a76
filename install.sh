#!/usr/bin/env bash
# install.sh — install rsagent on a Debian or Ubuntu realserver.
#
# Installs the packages rsagent needs (and arping and ipvsadm, which `rsagent lab` uses), builds
# a release binary, and installs:
#   /usr/local/bin/rsagent, /etc/rsagent/profiles/*.yaml, /etc/systemd/system/rsagent.service
# The unit is installed but not enabled. Safe to run again (it only replaces its own files).
# Needs: root, a Swift 6 toolchain (swift on PATH or in /opt/swift), and the Debian archive
# unless the packages below are already installed.
set -euo pipefail

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (prefix sudo: sudo ./install.sh): it installs packages and writes /usr/local/bin and /etc/rsagent"
command -v apt-get >/dev/null || die "this installer needs apt-get (Debian or Ubuntu); elsewhere install libnl-3 and libnl-route-3 headers and pkg-config, then run: swift build -c release"
cd "$(dirname "$0")"

# libnftables1: only `tunnel.mss` uses it, opened at run time.
PACKAGES=(libnl-3-dev libnl-route-3-dev libyaml-dev pkg-config iproute2 kmod arping ipvsadm libnftables1)
missing=()
for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq --error-on=any >/dev/null 2>&1 || die "apt-get update failed: is this machine offline? install ${missing[*]} from local media, then run install.sh again"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed (offline, or the packages are not in your sources); install them by hand and run install.sh again"
fi

SWIFT=$(command -v swift || true)
[ -n "$SWIFT" ] || { [ -x /opt/swift/usr/bin/swift ] && SWIFT=/opt/swift/usr/bin/swift; } || true
[ -n "$SWIFT" ] || die "no Swift toolchain found: install Swift 6 from swift.org (into /opt/swift or onto PATH) and run install.sh again"

say "building a release binary (the first build takes a few minutes)"
# The Swift runtime is linked in, so the installed binary needs no toolchain at run time.
bin=$(scripts/build-release "$SWIFT" 2>/dev/null) || die "the build failed; run 'scripts/build-release $SWIFT' to see why"

install -D -m 0755 "$bin" /usr/local/bin/rsagent
install -d -m 0755 /etc/rsagent/profiles
install -m 0644 profiles/*.yaml /etc/rsagent/profiles/
install -D -m 0644 systemd/rsagent.service /etc/systemd/system/rsagent.service
install -D -m 0644 README.md /usr/local/share/doc/rsagent/README.md
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

say "installed $(/usr/local/bin/rsagent --version) to /usr/local/bin/rsagent"
say "next: rsagent lab   (or: rsagent apply -c /etc/rsagent/profiles/dr-lo.yaml --dry-run)"
say "then: copy a profile to /etc/rsagent/rsagent.yaml, edit the VIPs, and 'systemctl enable --now rsagent'"
