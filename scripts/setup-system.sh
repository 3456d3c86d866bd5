#!/bin/bash
# setup-system.sh [--test]: install from Debian (12, bookworm) what o2fuse needs, and only that.
#   no flag   what a mount needs: libfuse2, fusermount + mount.fuse, the ocfs2-tools programs,
#             gcc (the kernel transport's /dev/fuse poll reader is C; without it, worker threads)
#   --test    also what the tests need: the libocfs2 oracle's build (ocfs2-tools-dev, comerr-dev),
#             fio, e2fsprogs, util-linux, util-linux-extra (fincore)
# Idempotent: asks dpkg once, and calls apt-get (update once, then install) only when a
# package is missing. Also makes sure /dev/fuse exists. Exit 1 when something is missing and
# cannot be installed (not root, apt failure).
set -u

mode=runtime
for arg in "$@"; do
  case "$arg" in
    --test) mode=test ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "o2fuse setup: unknown option '$arg' (use --test or nothing)" >&2; exit 2 ;;
  esac
done

say() { echo "o2fuse setup: $*"; }

# package|why, in install order
wanted=(
  "libfuse2|fuse-native's prebuilt addon needs libfuse.so.2"
  "ocfs2-tools|mkfs.ocfs2, fsck.ocfs2 and debugfs.ocfs2"
  "gcc|to build the /dev/fuse poll reader (native/fusepoll.c) of the kernel transport"
  "libc6-dev|C headers for the /dev/fuse poll reader"
)
if [ "$mode" = test ]; then
  wanted+=(
    "ocfs2-tools-dev|libocfs2.a and its headers, for the o2tool test oracle"
    "comerr-dev|et/com_err.h and libcom_err, which libocfs2.a needs to link"
    "libaio1|libaio.so.1, which libocfs2.a needs to link"
    "fio|verified I/O workloads"
    "e2fsprogs|reference tools used by tests"
    "util-linux|losetup, mount and findmnt used by tests"
    "util-linux-extra|fincore, which tests use to see a file's pages gone from the host's page cache"
  )
fi

names=()
for w in "${wanted[@]}"; do names+=("${w%%|*}"); done
# fusermount and mount.fuse: Debian's 'fuse' (2.9, beside libfuse2) or 'fuse3' (which breaks
# 'fuse' and ships the same two names as symlinks). Keep fuse3 when it is there.
names+=(fuse fuse3)

declare -A installed=()
while read -r pkg status; do
  [ "$status" = ii ] && installed[$pkg]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${names[@]}" 2>/dev/null)

missing=()
for w in "${wanted[@]}"; do
  pkg=${w%%|*}
  if [ -z "${installed[$pkg]:-}" ]; then
    missing+=("$pkg")
    say "missing $pkg (${w#*|})"
  fi
done
if [ -z "${installed[fuse]:-}" ] && [ -z "${installed[fuse3]:-}" ]; then
  missing+=(fuse)
  say "missing fuse (fusermount and mount.fuse, for 'mount -t fuse.o2fuse')"
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "o2fuse setup: not root, cannot install: ${missing[*]}" >&2
    echo "o2fuse setup: run as root: sudo bash $0 $*" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  say "installing ${missing[*]}"
  say "running apt-get update"
  if ! apt-get update -qq >/tmp/o2fuse-setup-apt.log 2>&1; then
    echo "o2fuse setup: apt-get update failed (see /tmp/o2fuse-setup-apt.log)" >&2
    tail -5 /tmp/o2fuse-setup-apt.log >&2
    exit 1
  fi
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/o2fuse-setup-apt.log 2>&1; then
    echo "o2fuse setup: apt-get install ${missing[*]} failed (see /tmp/o2fuse-setup-apt.log)" >&2
    tail -5 /tmp/o2fuse-setup-apt.log >&2
    exit 1
  fi
  say "installed ${missing[*]}"
fi

# /dev/fuse: the module may be unloaded, or (in a container) loaded without a device node.
if [ ! -e /dev/fuse ]; then
  if [ "$(id -u)" = 0 ]; then
    modprobe fuse 2>/dev/null && say "loaded the fuse kernel module"
    if [ ! -e /dev/fuse ] && grep -qw fuse /proc/filesystems 2>/dev/null; then
      mknod -m 0666 /dev/fuse c 10 229 && say "created /dev/fuse (char 10:229)"
    fi
  fi
  if [ ! -e /dev/fuse ]; then
    echo "o2fuse setup: warning: /dev/fuse does not exist and could not be created" \
      "(no fuse module, or not root): mounts will fail" >&2
  fi
fi

if [ "$mode" = test ] && [ ${#missing[@]} -eq 0 ]; then
  say "everything present (runtime and test)"
elif [ ${#missing[@]} -eq 0 ]; then
  say "everything present"
fi
exit 0
