#!/usr/bin/env bash
# Builds the real-kernel VFIO VM into .cache/vfio-vm/ (git-ignored): a stock Debian 6.12 kernel, its
# vfio, vfio_iommu_type1 and mdev modules, the kernel's sample mdev driver samples/vfio-mdev/mtty.c built
# out of tree, and src/kernel/native/vfio-steps.c compiled static, packed as a gzip'd initramfs whose
# /init creates two mtty-2 mdevs and runs vfio-steps on every /steps/*.txt (src/kernel/vm.ts puts the
# script there in a cpio archive of its own, in front of this one), then powers off.
#
# The kernel is the newest 6.12 amd64 unsigned image that apt can fetch together with linux-source-6.12
# of the same version (asked of apt-cache, never written down here). Everything comes from Debian's apt
# repositories with `apt-get download` and is unpacked with `dpkg-deb -x`: nothing is installed on the
# host but the build tools (busybox-static, cpio, gcc, make, xz-utils, libc6-dev, zstd) when missing.
# Kept in .cache/vfio-vm/src/ for reading: mtty.c, include/uapi/linux/vfio.h and drivers/vfio/vfio_main.c
# of exactly that kernel.
#
# Cached: nothing is rebuilt while the hash of this script, vfio-steps.c and the chosen kernel version
# matches the stamp (one line is printed). The kernel part (downloads, modules, mtty.ko, sources) has its
# own stamp, so a change to vfio-steps.c only recompiles it and repacks the initramfs.
# Exit status: 0 built or up to date; 3 not a Debian amd64 machine (one line says so); 1 anything else.
# Progress goes to stderr, a line per step on a terminal; with CI set (or no terminal) two lines.
set -euo pipefail
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
cd "$(dirname "$self")/.."
repo=$PWD
cache=$repo/.cache/vfio-vm
csrc=$repo/src/kernel/native/vfio-steps.c
# the two mdevs /init creates (type mtty-2: two ports, a 96-byte saved image each)
uuids="7b1d8f5e-3c2a-4f6b-9e0d-1a2b3c4d5e01 7b1d8f5e-3c2a-4f6b-9e0d-1a2b3c4d5e02"
build_packages=(busybox-static cpio gcc make xz-utils libc6-dev zstd)

verbose=0
if [ -t 2 ] && [ -z "${CI:-}" ]; then verbose=1; fi
started=$(date +%s%N)
elapsed() { local now; now=$(date +%s%N); printf '%d.%d s' $(((now - started) / 1000000000)) $(((now - started) / 100000000 % 10)); }
say() { if [ "$verbose" = 1 ]; then echo "vfio-vm: [$(elapsed)] $*" >&2; fi; }
note() { echo "vfio-vm: $*" >&2; }
die() { echo "vfio-vm: error: $*" >&2; exit 1; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "needs root (or sudo) for: $*"; fi
}

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1 ||
  [ "$(dpkg --print-architecture 2>/dev/null)" != amd64 ]; then
  note "not a Debian amd64 machine: the real-kernel VFIO VM is not built here (test/vfioVm.test.ts skips outside CI)"
  exit 3
fi

# ---- which kernel ------------------------------------------------------------------------------
# prints "<version> <abi>": the newest version of an amd64 unsigned 6.12 image that linux-source-6.12
# also has (so mtty.c and vfio_main.c are the running kernel's), e.g. "6.12.118-1~deb12u1 6.12.118+deb12"
pick_kernel() {
  local images best='' best_pkg='' pkg ver sources
  images=$(apt-cache search --names-only '^linux-image-6\.12\.[0-9]+\+[a-z0-9.]+-amd64-unsigned$' | awk '{print $1}')
  [ -n "$images" ] || return 1
  # shellcheck disable=SC2086
  sources=$(apt-cache madison linux-source-6.12 | awk -F'|' '{gsub(/ /, "", $2); print $2}')
  while read -r pkg ver; do
    grep -qxF "$ver" <<<"$sources" || continue
    if [ -z "$best" ] || dpkg --compare-versions "$ver" gt "$best"; then best=$ver; best_pkg=$pkg; fi
  done < <(apt-cache madison $images | awk -F'|' '{gsub(/ /, "", $1); gsub(/ /, "", $2); print $1, $2}')
  [ -n "$best" ] || return 1
  best_pkg=${best_pkg#linux-image-}
  echo "$best ${best_pkg%-amd64-unsigned}"
}
if ! kernel=$(pick_kernel); then
  say "no 6.12 kernel in apt's lists: apt-get update"
  as_root apt-get update -qq >/dev/null
  kernel=$(pick_kernel) || die "apt knows no linux-image-6.12.*-amd64-unsigned with a matching linux-source-6.12 (bookworm-security or bookworm-backports must be in apt's sources)"
fi
read -r kver abi <<<"$kernel"
release=$abi-amd64

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 2>/dev/null || true

stamp=$( { cat "$self" "$csrc"; echo "$kver"; } | sha256sum | cut -c1-16)
outputs=(kernel/bzImage initramfs.cpio.gz manifest.json)
up_to_date() {
  [ "$(cat "$cache/stamp" 2>/dev/null)" = "$stamp" ] || return 1
  local f; for f in "${outputs[@]}"; do [ -s "$cache/$f" ] || return 1; done
}
if up_to_date; then
  note "up to date: linux $release, .cache/vfio-vm ($stamp)"
  exit 0
fi
note "building for linux $release ($kver) into .cache/vfio-vm"

need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  say "installing ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
      die "could not install ${missing[*]}"
  fi
}
need_packages "${build_packages[@]}"

# ---- the kernel part: downloads, kernel, modules, mtty.ko, sources (keyed on the version) ---------
kernel_stage() {
  local debs=$cache/debs work=$cache/work pkgs p dep
  pkgs=("linux-image-$abi-amd64-unsigned" "linux-headers-$abi-amd64" "linux-headers-$abi-common"
    "linux-kbuild-$abi" linux-source-6.12)
  mkdir -p "$debs"
  # keep only this version's packages
  find "$debs" -name '*.deb' ! -name "*_${kver}_*.deb" -delete
  local want=()
  for p in "${pkgs[@]}"; do compgen -G "$debs/${p}_*.deb" >/dev/null || want+=("$p=$kver"); done
  if [ ${#want[@]} -gt 0 ]; then
    say "downloading ${#want[@]} packages"
    local sandbox=()
    [ "$(id -u)" = 0 ] && sandbox=(-o APT::Sandbox::User=root)
    if ! (cd "$debs" && apt-get download -qq "${sandbox[@]}" "${want[@]}"); then
      # stale lists name versions the archive no longer has: refresh them once and start over
      [ -z "${VFIO_VM_APT_UPDATED:-}" ] || die "apt-get download ${want[*]} failed"
      note "apt-get download failed: apt-get update, then again"
      as_root apt-get update -qq >/dev/null
      flock -u 9 2>/dev/null || true
      VFIO_VM_APT_UPDATED=1 exec bash "$self"
    fi
  fi

  say "unpacking"
  rm -rf "$work" "$cache/kernel" "$cache/src" "$cache/modules"
  mkdir -p "$work/root" "$cache/kernel" "$cache/src" "$cache/modules"
  for p in "linux-headers-$abi-amd64" "linux-headers-$abi-common" "linux-kbuild-$abi"; do
    dpkg-deb -x "$debs/${p}"_*.deb "$work/root"
  done
  # of the image only what is used: the kernel, its config, the vfio modules (others on demand below)
  image_files() {
    dpkg-deb --fsys-tarfile "$debs/linux-image-$abi-amd64-unsigned"_*.deb | tar -x -C "$work/root" --wildcards "$@"
  }
  image_files ./boot './lib/modules/*/kernel/drivers/vfio/*'

  say "extracting mtty.c, vfio.h, vfio_main.c from the source tarball"
  # tar -xJf on the tarball inside the package, streamed (its 150 MB never land on disk), with xz
  # decompressing the tarball's blocks on every core (half the time on two)
  dpkg-deb --fsys-tarfile "$debs"/linux-source-6.12_*.deb | tar -xO ./usr/src/linux-source-6.12.tar.xz |
    xz -dc -T0 | tar -x -C "$work" --wildcards \
    '*/samples/vfio-mdev/mtty.c' '*/include/uapi/linux/vfio.h' '*/drivers/vfio/vfio_main.c'
  (cd "$work"/linux-source-6.12 && cp --parents samples/vfio-mdev/mtty.c include/uapi/linux/vfio.h \
    drivers/vfio/vfio_main.c "$cache/src/")

  cp "$work/root/boot/vmlinuz-$release" "$cache/kernel/bzImage"
  cp "$work/root/boot/config-$release" "$cache/kernel/config"
  # the raw vmlinux boots through its PVH entry, skipping the decompression under TCG
  local magic off
  magic=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$cache/kernel/bzImage" | head -1 | cut -d: -f1 || true)
  if [ -n "$magic" ] && command -v zstd >/dev/null 2>&1; then
    off=$((magic + 1))
    tail -c +"$off" "$cache/kernel/bzImage" | zstd -dcq 2>/dev/null >"$cache/kernel/vmlinux" || true
    if [ "$(head -c 4 "$cache/kernel/vmlinux" | od -An -tx1 | tr -d ' ')" != 7f454c46 ]; then
      rm -f "$cache/kernel/vmlinux"
    fi
  fi

  say "collecting modules"
  local moddir=$work/root/lib/modules/$release/kernel
  modfile() {
    local f; f=$(find "$moddir" -name "$1.ko*" | head -1)
    [ -n "$f" ] || { image_files --wildcards-match-slash "./lib/modules/*/$1.ko*" 2>/dev/null || true
      f=$(find "$moddir" -name "$1.ko*" | head -1); }
    echo "$f"
  }
  add_module() { # decompressed, dependencies first; order goes to modules/order
    local name=$1 file dep
    grep -qxF "$name" "$cache/modules/order" 2>/dev/null && return 0
    file=$(modfile "$name"); [ -n "$file" ] || die "module $name not in the image package"
    case $file in
      *.xz) xz -dc "$file" >"$cache/modules/$name.ko" ;;
      *.zst) zstd -dcq "$file" >"$cache/modules/$name.ko" ;;
      *) cp "$file" "$cache/modules/$name.ko" ;;
    esac
    for dep in $(tr '\0' '\n' <"$cache/modules/$name.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
      add_module "${dep//-/_}"
    done
    echo "$name" >>"$cache/modules/order"
  }
  : >"$cache/modules/order"
  for p in vfio vfio_iommu_type1 mdev; do add_module "$p"; done

  say "building mtty.ko"
  local headers=$work/root/usr/src/linux-headers-$release cc
  sed -i "s|^include /usr/src/|include $work/root/usr/src/|" "$headers/Makefile"
  cc=$(sed -n 's/^CC = .*\(gcc-[0-9][0-9]*\).*/\1/p' "$headers/.kernelvariables" | head -1)
  [ -z "$cc" ] || need_packages "$cc"
  mkdir -p "$work/mtty"
  cp "$cache/src/samples/vfio-mdev/mtty.c" "$work/mtty/"
  echo 'obj-m := mtty.o' >"$work/mtty/Makefile"
  make -s -C "$headers" M="$work/mtty" modules CONFIG_DEBUG_INFO_BTF_MODULES= >"$work/make.log" 2>&1 ||
    { tail -20 "$work/make.log" >&2; die "building mtty.ko failed"; }
  strip --strip-debug -o "$cache/modules/mtty.ko" "$work/mtty/mtty.ko"
  for dep in $(tr '\0' '\n' <"$cache/modules/mtty.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
    add_module "${dep//-/_}"
  done
  echo mtty >>"$cache/modules/order"

  rm -rf "$work"
}
kernel_key=$( { echo "$kver"; declare -f kernel_stage; } | sha256sum | cut -c1-16)
if [ "$(cat "$cache/kernel.stamp" 2>/dev/null)" != "$kernel_key" ] || [ ! -s "$cache/kernel/bzImage" ] ||
  [ ! -s "$cache/modules/mtty.ko" ] || [ ! -s "$cache/src/include/uapi/linux/vfio.h" ]; then
  rm -f "$cache/stamp" "$cache/kernel.stamp"
  kernel_stage
  echo "$kernel_key" >"$cache/kernel.stamp"
else
  say "kernel part cached ($release)"
fi

# ---- the step program and the initramfs -------------------------------------------------------
say "compiling vfio-steps"
gcc -static -O2 -Wall -Wextra -Werror -I "$cache/src/include/uapi" -o "$cache/vfio-steps" "$csrc" ||
  die "compiling $csrc failed"
strip "$cache/vfio-steps"

say "packing the initramfs"
rd=$cache/initramfs
rm -rf "$rd"
mkdir -p "$rd"/{bin,lib/modules,proc,sys,dev,steps,tmp}
cp /bin/busybox "$rd/bin/busybox"
for a in sh mount insmod poweroff cat echo ls sleep; do ln -s busybox "$rd/bin/$a"; done
cp "$cache/vfio-steps" "$rd/bin/vfio-steps"
cp "$cache/modules/"*.ko "$rd/lib/modules/"
cat >"$rd/init" <<EOF
#!/bin/sh
# generated by scripts/vfio-vm.sh: load the modules, create the mdevs, run the scripts, power off
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
fatal() { echo "@@ {\"fatal\":\"\$1\"}"; sleep 1; poweroff -f; }
for m in $(tr '\n' ' ' <"$cache/modules/order"); do insmod /lib/modules/\$m.ko || fatal "insmod \$m"; done
types=/sys/class/mdev_bus/mtty/mdev_supported_types/mtty-2
for u in $uuids; do echo \$u >\$types/create || fatal "create mdev \$u"; done
set -- /steps/*.txt
[ -e "\$1" ] || fatal "no script in /steps"
/bin/vfio-steps$(for u in $uuids; do printf ' -d %s' "$u"; done) "\$@" || sleep 1  # vfio-steps drains the console; after a crash give it a second
poweroff -f
EOF
chmod +x "$rd/init"
(cd "$rd" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible | gzip -n -6) \
  >"$cache/initramfs.cpio.gz.tmp"
mv "$cache/initramfs.cpio.gz.tmp" "$cache/initramfs.cpio.gz"
rm -rf "$rd"

kernel_file=bzImage
[ -s "$cache/kernel/vmlinux" ] && kernel_file=vmlinux
json_uuids=$(printf '"%s",' $uuids)
cat >"$cache/manifest.json" <<EOF
{
  "release": "$release",
  "version": "$kver",
  "image": "linux-image-$abi-amd64-unsigned",
  "kernel": "kernel/$kernel_file",
  "bzImage": "kernel/bzImage",
  "initrd": "initramfs.cpio.gz",
  "uuids": [${json_uuids%,}],
  "mdevType": "mtty-2",
  "stamp": "$stamp"
}
EOF
echo "$stamp" >"$cache/stamp"
note "built in $(elapsed): linux $release, kernel/$kernel_file + initramfs.cpio.gz in .cache/vfio-vm"
