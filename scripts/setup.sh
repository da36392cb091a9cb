#!/usr/bin/env bash
# Set-up of a fresh machine: the system packages the tests need, then the npm packages (and the build).
#  - chromium renders the diagrams (puppeteer never downloads a browser: .puppeteerrc.cjs);
#  - spin (SPIN 6.5) and gcc run the SPIN differential test of export --promela (test/promela.test.ts);
#  - QEMU >= 8.1 runs the real-QEMU suite (switchover-ack needs 8.1). Debian bookworm has 7.2, so on
#    bookworm it comes from bookworm-backports, whose source line is derived from the machine's own
#    Debian source. Elsewhere install QEMU from your distribution.
# Installing needs root (or sudo); what is already there is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

export PUPPETEER_SKIP_DOWNLOAD=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v spin >/dev/null 2>&1 || need_apt+=(spin)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
qemu_ok() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
  local v
  v=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
  set -- $v
  [ "${1:-0}" -gt 8 ] || { [ "${1:-0}" -eq 8 ] && [ "${2:-0}" -ge 1 ]; }
}
qemu_from=()
if ! qemu_ok; then
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  src=/etc/apt/sources.list.d/debian.sources
  if [ "$codename" = bookworm ] && [ -f "$src" ]; then
    # bookworm's own QEMU is 7.2: take 10.0 from backports, on the mirror this machine already uses
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list.d/ /etc/apt/sources.list; then
      uri=$(awk '/^URIs:/ {print $2; exit}' "$src")
      keyring=$(awk '/^Signed-By:/ {print $2; exit}' "$src")
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uri" "$keyring" |
        as_root tee /etc/apt/sources.list.d/backports.sources >/dev/null
    fi
    qemu_from=(-t bookworm-backports)
  fi
  need_qemu=1
fi
if [ ${#need_apt[@]} -gt 0 ] || [ -n "${need_qemu:-}" ]; then
  as_root apt-get update -qq
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  if [ -n "${need_qemu:-}" ]; then
    echo "setup: installing qemu-system-x86 ${qemu_from[*]}"
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${qemu_from[@]}" qemu-system-x86 >/dev/null
  fi
fi

npm ci --no-audit --no-fund
bash scripts/vfio-vm.sh || { rc=$?; [ "$rc" = 3 ] || exit "$rc"; }   # the real-kernel VFIO VM (.cache/vfio-vm); 3: not Debian amd64, said in one line
bash scripts/qemu-vfio-vm.sh || { rc=$?; [ "$rc" = 3 ] || exit "$rc"; }   # the nested VFIO VM (.cache/qemu-vfio-vm): the host QEMU inside it, four mtty mdevs
