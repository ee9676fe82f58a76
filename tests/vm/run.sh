#!/usr/bin/env bash
# VM tests: the code paths this machine's kernel cannot run (dummy devices, ipip/tunl0, module
# autoloading) exercised for real under Debian's own kernel in qemu (software emulation).
#
# The kernel package is fetched with `apt-get download` (not installed). The guest boots a
# busybox initramfs holding only the modules the tests need; the host's root is shared
# read-only over 9p and /usr, /opt, /lib64 point into it, so the freshly built rsagent, iproute2
# and kmod run in the guest unchanged. The guest runs tests/vm/guest.sh, prints one
# "VM-TEST: PASS|FAIL name" line per check and "VM-TEST: N checks passed, M failed", and powers off.
# Bounded: a guest watchdog powers off after 480 s, the host kills qemu after 540 s. The console
# log is kept in $WORK/console.log on failure.
#
# Usage: tests/vm/run.sh [RSAGENT_BINARY]      (root; skips with a reason if qemu or the kernel
#                                              package cannot be had)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
BIN=$(realpath "${1:-$REPO/.build/debug/rsagent}")
WORK=$REPO/.build/vm
skip() { echo "VM-TEST: skipped: $*"; exit 0; }

[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed (Debian package qemu-system-x86)"
[ -x /bin/busybox ] || skip "busybox is not installed (Debian package busybox-static)"
command -v depmod >/dev/null || skip "depmod is not installed (Debian package kmod)"
[ -x "$BIN" ] || { echo "VM-TEST: no rsagent binary at $BIN; run swift build first" >&2; exit 1; }

mkdir -p "$WORK"
# Debian's current kernel: the package linux-image-amd64 depends on.
PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$PKG" ] || skip "apt cannot resolve linux-image-amd64 (run apt-get update)"
DEB=$(ls "$WORK"/"$PKG"_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$DEB" ]; then
  (cd "$WORK" && apt-get download "$PKG" >/dev/null 2>&1) || skip "apt-get download $PKG failed (offline?)"
  DEB=$(ls "$WORK"/"$PKG"_*.deb | head -n1)
fi
KROOT=$WORK/kernel
KVER=$(ls "$KROOT/lib/modules" 2>/dev/null | head -n1 || true)
if [ -z "$KVER" ] || [ ! -f "$KROOT/lib/modules/$KVER/modules.dep" ]; then
  rm -rf "$KROOT"; dpkg-deb -x "$DEB" "$KROOT"
  KVER=$(ls "$KROOT/lib/modules" | head -n1)
  depmod -b "$KROOT" "$KVER"   # the package's postinst would make modules.dep
fi

# The initramfs: busybox, the modules below with their dependencies, symlinks into the host.
INIT=$WORK/initramfs
rm -rf "$INIT"
mkdir -p "$INIT"/{busybox,dev,proc,sys,tmp,run,host,etc,var/lib,lib/modules/"$KVER"}
cp /bin/busybox "$INIT/busybox/busybox"
# Host programs keep their absolute symlinks (/sbin/modprobe -> /bin/kmod): point /bin too.
for l in usr opt lib64 bin; do ln -s "/host/$l" "$INIT/$l"; done
ln -s /host/usr/lib/x86_64-linux-gnu "$INIT/lib/x86_64-linux-gnu"
ln -s /host/etc/ld.so.cache "$INIT/etc/ld.so.cache"
ln -s /host/etc/iproute2 "$INIT/etc/iproute2"
ln -s /host/etc/alternatives "$INIT/etc/alternatives"
ln -s /usr/sbin "$INIT/sbin"    # /sbin/modprobe (the kernel's module loader) is kmod's
# keepalived runs its checks as a named user (script_user root): it needs to find root.
echo "root:x:0:0:root:/tmp:/bin/sh" > "$INIT/etc/passwd"
echo "root:x:0:" > "$INIT/etc/group"
MODS="virtio_pci 9pnet_virtio 9p veth dummy ipip sit ip6_tunnel ip_gre ip6_gre fou fou6 bridge inet_diag tcp_diag udp_diag crc32c_generic ip_vs ip_vs_rr ip_vs_wrr nf_tables"
for m in $MODS; do
  modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}'
done | sort -u | while read -r ko; do
  rel=${ko#"$KROOT"/lib/modules/"$KVER"/}
  mkdir -p "$INIT/lib/modules/$KVER/$(dirname "$rel")"
  cp "$ko" "$INIT/lib/modules/$KVER/$rel"
done
cp "$KROOT/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$INIT/lib/modules/$KVER/" 2>/dev/null || true
depmod -b "$INIT" "$KVER"

cat > "$INIT/init" <<'INIT'
#!/busybox/busybox sh
/busybox/busybox mount -t proc proc /proc
/busybox/busybox mount -t sysfs sys /sys
/busybox/busybox mount -t devtmpfs dev /dev
/busybox/busybox mount -t tmpfs tmp /tmp
/busybox/busybox mount -t tmpfs run /run
/busybox/busybox mount -t tmpfs varlib /var/lib
for m in virtio_pci 9pnet_virtio 9p; do /busybox/busybox modprobe $m; done
/busybox/busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host || echo "VM-TEST: FAIL mounting the host root"
( /busybox/busybox sleep 480; echo "VM-TEST: FAIL watchdog: the guest ran for 480 s"; /busybox/busybox poweroff -f ) &
for arg in $(/busybox/busybox cat /proc/cmdline); do
  case $arg in rsagent.repo=*) REPO=/host${arg#*=};; rsagent.bin=*) BIN=/host${arg#*=};; esac
done
export PATH=/usr/sbin:/usr/bin HOME=/tmp LANG=C.UTF-8 REPO BIN
/usr/bin/bash "$REPO/tests/vm/guest.sh"
echo "VM-TEST: guest finished"
/busybox/busybox poweroff -f
INIT
chmod +x "$INIT/init"
(cd "$INIT" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initrd.gz"

LOG=$WORK/console.log
echo "VM-TEST: booting $PKG ($KVER) under qemu (TCG)"
start=$(date +%s)
setsid timeout --foreground 540 qemu-system-x86_64 \
  -accel tcg,tb-size=128 -m 1024 -smp 1 -nographic -no-reboot -nic none \
  -kernel "$KROOT/boot/vmlinuz-$KVER" -initrd "$WORK/initrd.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 rsagent.repo=$REPO rsagent.bin=$BIN" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  </dev/null >"$LOG" 2>&1 || true
# The checks, and under each failed one what its command printed (indented).
awk '/VM-TEST:/ {print; detail = /VM-TEST: FAIL/; next} detail && /^    / {print; next} {detail = 0}' "$LOG" || true
echo "VM-TEST: qemu ran $(( $(date +%s) - start )) s"
summary=$(grep -a "VM-TEST: [0-9]* checks passed, [0-9]* failed" "$LOG" | tail -n1 || true)
if [ -z "$summary" ] || ! echo "$summary" | grep -q " 0 failed" || grep -aq "VM-TEST: FAIL" "$LOG"; then
  echo "VM-TEST: failed; console log kept at $LOG" >&2
  exit 1
fi
echo "vm suite: ${summary#VM-TEST: }"
