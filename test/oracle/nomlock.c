/*
 * nomlock.so: preloaded into fsck.ocfs2 by the tests (test/lib/fsck.ts).
 * fsck sizes its I/O cache to the machine's memory and mlocks it: on a
 * 24 GiB machine it pins 512 MiB per journal slot, then twice the volume, which faults in and zeroes every page up front and costs
 * about half a second of CPU per run, most of its run on a test volume. With
 * mlock a no-op the same cache is allocated and used, its pages faulted in
 * as fsck touches them: what fsck checks and repairs does not change.
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
