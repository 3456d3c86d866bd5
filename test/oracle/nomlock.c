/*
 * nomlock.so: preloaded into fsck.ocfs2 by the tests (test/lib/fsck.ts).
 * fsck sizes its I/O cache to the machine's memory and mlocks it: first
 * 512 MiB per journal slot (for the journals), then up to twice the volume
 * (for the checks). Locking faults in and zeroes every page up front: about
 * half a second of CPU per run on a 24 GiB machine, most of a check of a
 * small test volume. With mlock a no-op the same cache is allocated and
 * used, its pages faulted in as fsck touches them: what fsck checks and
 * repairs does not change.
 */
#include <stddef.h>

int mlock(const void *addr, size_t len)
{
	(void)addr;
	(void)len;
	return 0;
}

int munlock(const void *addr, size_t len)
{
	(void)addr;
	(void)len;
	return 0;
}
