#!/bin/bash
# npm start: everything from a fresh checkout to a mounted volume.
#   installs the system packages (scripts/setup-system.sh) and node modules if missing,
#   builds, formats ./o2fuse.img (1 GiB, sparse) with `o2fuse mkfs` if it does not exist,
#   and mounts it on ./mnt in the foreground. Ctrl-C unmounts cleanly.
# Environment: O2FUSE_IMAGE (image path), O2FUSE_MNT (mount point), O2FUSE_OPTIONS (-o list).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
image=${O2FUSE_IMAGE:-$repo/o2fuse.img}
mnt=${O2FUSE_MNT:-$repo/mnt}
options=${O2FUSE_OPTIONS:-}

bash scripts/setup-system.sh
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
# bin/o2fuse builds dist/ itself when it is missing or stale.

if [ ! -e "$image" ]; then
  echo "quickstart: formatting $image (1 GiB, sparse)"
  bin/o2fuse mkfs -L o2fuse "$image" 1G
fi
mkdir -p "$mnt"

mount_foreground() {
  echo "quickstart: mounting $image on $mnt${1:+ with -o $1} (Ctrl-C unmounts)"
  # The daemon handles Ctrl-C itself (unmount, write back, exit 0); do not let it kill this script.
  trap ':' INT
  set +e
  bin/o2fuse mount -f ${1:+-o "$1"} "$image" "$mnt"
  local status=$?
  set -e
  trap - INT
  return $status
}

if mount_foreground "$options"; then
  exit 0
fi
case ",$options," in
  *,ro,*) exit 1 ;;
esac
# Until the engine writes, a read-write mount of a volume it cannot write is refused: fall back to ro.
echo "quickstart: read-write mount refused; mounting read-only instead"
mount_foreground "${options:+$options,}ro"
