#!/bin/sh
# Installs what Ambit needs on a Debian/Ubuntu machine: the system packages that are missing (apt-get, as root), then
# the npm packages and the build (`npm install`). Safe to run again: it installs only what is missing.
# The tools are the ones `ambit precheck` checks (src/cli/commands/precheck.ts) plus the native addon's compilers.
set -eu
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }

if ! have node || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  found=$(node --version 2>/dev/null || true)
  echo "ambit needs Node.js >= 20 (found: ${found:-none}); install it first, e.g. from https://nodejs.org" >&2
  exit 1
fi

need=""
add() { case " $need " in *" $1 "*) ;; *) need="$need $1" ;; esac; }
# Debian's nodejs package comes without npm.
have npm || add npm
have ip || add iproute2
have nft || add nftables
for tool in nsenter unshare setpriv; do have "$tool" || add util-linux; done
have mount || add mount
# The native addon (setns sockets, SO_MARK, SO_ORIGINAL_DST) is compiled by node-gyp.
have make || add make
have g++ || add g++
have python3 || add python3

if [ -n "$need" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages:$need; install them as root: sudo apt-get install -y$need" >&2
    exit 1
  fi
  if ! have apt-get; then
    echo "missing packages:$need (Debian's names); install them with this system's package manager" >&2
    exit 1
  fi
  echo "installing:$need" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq $need
fi

npm install
