#!/bin/bash
# build-native.sh: builds dist/native/fusepoll.node (the /dev/fuse poll reader, native/fusepoll.c)
# with the C compiler and node's own headers: no node-gyp, nothing downloaded. Rebuilds only when
# the source is newer. Without a compiler or headers it says so and exits 0: the kernel transport
# then reads /dev/fuse with worker threads (slower per request; see fs/fuse/lowlevel/README.md).
# O2FUSE_NATIVE=0 skips the build (and the addon is then not used; see devPoll.ts).
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
src=$repo/native/fusepoll.c
out=$repo/dist/native/fusepoll.node
say() { echo "o2fuse: $*" >&2; }

[ "${O2FUSE_NATIVE:-}" = 0 ] && exit 0
[ -f "$out" ] && [ "$out" -nt "$src" ] && exit 0

cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1; then
  say "no C compiler ($cc): the /dev/fuse poll reader is not built; the kernel transport reads with worker threads (npm run setup installs gcc)"
  exit 0
fi
include=
for dir in "$(node -p 'require("path").resolve(process.execPath, "../../include/node")')" /usr/include/node /usr/local/include/node; do
  if [ -f "$dir/node_api.h" ]; then include=$dir; break; fi
done
if [ -z "$include" ]; then
  say "node's C headers (node_api.h) not found beside $(command -v node) or in /usr/include/node: the /dev/fuse poll reader is not built; the kernel transport reads with worker threads"
  exit 0
fi
mkdir -p "$(dirname "$out")"
# N-API symbols resolve against the node binary at load time, hence no -l and undefined symbols allowed.
# Per-process temporary name: launchers started together (parallel tests) may all build; the last rename wins.
tmp=$out.$$.tmp
if ! "$cc" -O2 -Wall -Wextra -Werror -shared -fPIC -I"$include" -o "$tmp" "$src" 2>"$out.log"; then
  say "building the /dev/fuse poll reader failed (see $out.log); the kernel transport reads with worker threads"
  rm -f "$tmp"
  exit 0
fi
mv "$tmp" "$out"
rm -f "$out.log"
say "built the /dev/fuse poll reader ($out)"
