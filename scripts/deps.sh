#!/usr/bin/env bash
# Install what trmtop needs to build and test on Debian 12 (run as root, or
# with sudo available).  Safe to run again.
set -eu
pkgs=(gcc clang libclang-rt-14-dev meson ninja-build pkg-config
      libelf-dev libdw-dev zlib1g-dev liblzma-dev libbz2-dev
      libncurses-dev libcmocka-dev tmux
      python3 python3-dev python3.11 python3-pytest procps)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
