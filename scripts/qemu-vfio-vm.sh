#!/usr/bin/env bash
# Builds the nested VFIO VM into .cache/qemu-vfio-vm/ (git-ignored): the real-kernel VM of
# scripts/vfio-vm.sh (its Debian 6.12 kernel, vfio/mdev modules and mtty.ko, read from .cache/vfio-vm/,
# which is built first when missing) plus, in a zstd-compressed initramfs of its own:
#  - the host's qemu-system-x86_64 with every shared library ldd names (at the same paths) and the one
#    firmware it needs (SeaBIOS bios-256k.bin, kvmvapic.bin; the inner QEMUs run with -nodefaults and romfile=,
#    so no option ROM is loaded);
#  - virtio_net (with failover, net_failover) so the VM's user-mode network can forward the inner QMP
#    tcp listeners to the host (hostfwd);
#  - src/qemu-vfio/native/clock-beacon.c compiled static (the guest clock on the console);
#  - an /init that loads the modules, creates four mtty-2 mdevs (two per inner QEMU), brings up lo and
#    eth0 (10.0.2.15), prints "@@ready" and runs /steps/run.sh, which src/qemu-vfio/nested.ts puts in
#    front of the initramfs as an uncompressed cpio archive (it starts the inner QEMUs); then powers off.
#
# Cached: nothing is rebuilt while the hash of this script, clock-beacon.c, the QEMU binary and the
# stamp of .cache/vfio-vm matches .cache/qemu-vfio-vm/stamp (one line is printed).
# Exit status: 0 built or up to date; 3 not a Debian amd64 machine; 1 anything else.
# Progress goes to stderr, a line per step on a terminal; with CI set (or no terminal) two lines.
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$self")/.."
repo=$PWD
base=$repo/.cache/vfio-vm
cache=$repo/.cache/qemu-vfio-vm
csrc=$repo/src/qemu-vfio/native/clock-beacon.c
# four mtty-2 mdevs: the source QEMU takes the first two, the destination QEMU the last two
uuids="5c0f2a9e-8d41-4b7a-a3e6-0e1d2c3b4a01 5c0f2a9e-8d41-4b7a-a3e6-0e1d2c3b4a02 5c0f2a9e-8d41-4b7a-a3e6-0e1d2c3b4a03 5c0f2a9e-8d41-4b7a-a3e6-0e1d2c3b4a04"
net_modules="failover net_failover virtio_net"

verbose=0
if [ -t 2 ] && [ -z "${CI:-}" ]; then verbose=1; fi
started=$(date +%s%N)
elapsed() { local now; now=$(date +%s%N); printf '%d.%d s' $(((now - started) / 1000000000)) $(((now - started) / 100000000 % 10)); }
say() { if [ "$verbose" = 1 ]; then echo "qemu-vfio-vm: [$(elapsed)] $*" >&2; fi; }
note() { echo "qemu-vfio-vm: $*" >&2; }
die() { echo "qemu-vfio-vm: error: $*" >&2; exit 1; }

if ! command -v dpkg-deb >/dev/null 2>&1 || [ "$(dpkg --print-architecture 2>/dev/null)" != amd64 ]; then
  note "not a Debian amd64 machine: the nested VFIO VM is not built here"
  exit 3
fi
qemu=$(command -v qemu-system-x86_64 || true)
[ -n "$qemu" ] || die "qemu-system-x86_64 is not installed (scripts/setup.sh installs it)"
qemu=$(readlink -f "$qemu")

# the real-kernel VM first (only when its outputs are missing: it has its own cache)
if [ ! -s "$base/manifest.json" ] || [ ! -s "$base/modules/order" ] || [ ! -s "$base/stamp" ]; then
  note "building .cache/vfio-vm first"
  bash "$repo/scripts/vfio-vm.sh" || die "scripts/vfio-vm.sh failed"
fi
release=$(sed -n 's/.*"release": "\([^"]*\)".*/\1/p' "$base/manifest.json")
kernel=$(sed -n 's/.*"kernel": "\([^"]*\)".*/\1/p' "$base/manifest.json")
[ -n "$release" ] && [ -s "$base/$kernel" ] || die ".cache/vfio-vm/manifest.json names no kernel"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 2>/dev/null || true

stamp=$( { cat "$self" "$csrc" "$base/stamp"; sha256sum "$qemu"; } | sha256sum | cut -c1-16)
if [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ] && [ -s "$cache/initramfs.cpio.zst" ] && [ -s "$cache/manifest.json" ]; then
  note "up to date: linux $release + $("$qemu" --version | head -1 | sed 's/ (.*//'), .cache/qemu-vfio-vm ($stamp)"
  exit 0
fi
note "building the nested VFIO VM into .cache/qemu-vfio-vm"

# ---- the network modules, from the kernel package vfio-vm.sh downloaded ---------------------------
deb=$(compgen -G "$base/debs/linux-image-*-amd64-unsigned_*.deb" | head -1 || true)
if [ ! -s "$cache/modules/virtio_net.ko" ] || [ "$(cat "$cache/modules/.release" 2>/dev/null)" != "$release" ]; then
  [ -n "$deb" ] || die "no kernel package in .cache/vfio-vm/debs (run scripts/vfio-vm.sh)"
  say "extracting $net_modules"
  rm -rf "$cache/modules" "$cache/work"
  mkdir -p "$cache/modules" "$cache/work"
  pats=()
  for m in $net_modules; do pats+=("./lib/modules/$release/kernel/*/$m.ko*"); done
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$cache/work" --wildcards "${pats[@]}"
  for m in $net_modules; do
    f=$(find "$cache/work" -name "$m.ko*" | head -1)
    [ -n "$f" ] || die "module $m not in $deb"
    case $f in
      *.xz) xz -dc "$f" >"$cache/modules/$m.ko" ;;
      *.zst) zstd -dcq "$f" >"$cache/modules/$m.ko" ;;
      *) cp "$f" "$cache/modules/$m.ko" ;;
    esac
  done
  rm -rf "$cache/work"
  echo "$release" >"$cache/modules/.release"
fi

say "compiling clock-beacon"
gcc -static -O2 -Wall -Wextra -Werror -o "$cache/clock-beacon" "$csrc" || die "compiling $csrc failed"
strip "$cache/clock-beacon"

say "packing the initramfs"
rd=$cache/initramfs
rm -rf "$rd"
mkdir -p "$rd"/{bin,usr/bin,lib/modules,proc,sys,dev,steps,tmp,run,usr/share/qemu}
cp /bin/busybox "$rd/bin/busybox"
for a in sh mount insmod poweroff cat echo ls sleep ifconfig mkfifo sed kill ps tail touch; do ln -sf busybox "$rd/bin/$a"; done
cp "$cache/clock-beacon" "$rd/bin/clock-beacon"
cp "$base/modules/"*.ko "$cache/modules/"*.ko "$rd/lib/modules/"
# QEMU, its libraries (at the paths ldd resolves them to) and its loader
cp "$qemu" "$rd/usr/bin/qemu-system-x86_64"
for lib in $(ldd "$qemu" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
  mkdir -p "$rd$(dirname "$lib")"
  cp -L "$lib" "$rd$lib"
done
bios=/usr/share/seabios/bios-256k.bin
[ -s "$bios" ] || bios=/usr/share/qemu/bios-256k.bin
[ -s "$bios" ] || die "no bios-256k.bin (package seabios)"
cp -L "$bios" "$rd/usr/share/qemu/bios-256k.bin"
# the pc machine asks for kvmvapic.bin even under TCG (an error line when missing, nothing more)
[ ! -s /usr/share/qemu/kvmvapic.bin ] || cp -L /usr/share/qemu/kvmvapic.bin "$rd/usr/share/qemu/"
order="$(tr '\n' ' ' <"$base/modules/order") $net_modules"
cat >"$rd/init" <<EOF
#!/bin/sh
# generated by scripts/qemu-vfio-vm.sh: modules, four mdevs, the network, then /steps/run.sh
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
fatal() { echo "@@fatal \$1"; sleep 1; poweroff -f; }
for m in $order; do insmod /lib/modules/\$m.ko || fatal "insmod \$m"; done
types=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
for u in $uuids; do echo \$u >\$types/create || fatal "create mdev \$u"; done
ifconfig lo 127.0.0.1 up || fatal "ifconfig lo"
ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up || fatal "ifconfig eth0"
[ -e /steps/run.sh ] || fatal "no /steps/run.sh"
echo "@@ready"
. /steps/run.sh
poweroff -f
EOF
chmod +x "$rd/init"
# zstd: the kernel (CONFIG_RD_ZSTD) unpacks it faster than gzip under TCG
(cd "$rd" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible | zstd -q -T0 -6) \
  >"$cache/initramfs.cpio.zst.tmp"
mv "$cache/initramfs.cpio.zst.tmp" "$cache/initramfs.cpio.zst"
rm -f "$cache/initramfs.cpio.gz"
rm -rf "$rd"

json_uuids=$(printf '"%s",' $uuids)
cat >"$cache/manifest.json" <<EOF
{
  "release": "$release",
  "kernel": "../vfio-vm/$kernel",
  "initrd": "initramfs.cpio.zst",
  "qemu": "$("$qemu" --version | head -1)",
  "uuids": [${json_uuids%,}],
  "mdevType": "mtty-2",
  "stamp": "$stamp"
}
EOF
echo "$stamp" >"$cache/stamp"
note "built in $(elapsed): .cache/qemu-vfio-vm/initramfs.cpio.zst ($(du -h "$cache/initramfs.cpio.zst" | cut -f1)), kernel from .cache/vfio-vm"
