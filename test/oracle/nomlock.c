/*
 * nomlock.so: preloaded into fsck.ocfs2 by the tests (test/lib/fsck.ts).
 * fsck sizes its I/O cache to the machine's memory and mlocks it: first
 * 512 MiB per journal slot (for the journals), then up to twice the volume
 * (for the checks). Locking faults in and zeroes every page up front: about
 * half a second of CPU per run on a 24 GiB machine, most of a check of a
 * small test volume. With mlock a no-op the same cache is allocated and
 * used, its pages faulted in as fsck touches them: what fsck checks and
 * repairs does not change.
 *
 * With O2_NOMLOCK_LOG set, each call it skips is appended to that file
 * ("mlock BYTES"), so a test can see that the preload took effect
 * (test/oracle-selftest/fsck-cache-not-pinned).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

static void note(const char *what, size_t len)
{
	const char *log = getenv("O2_NOMLOCK_LOG");
	FILE *f;

	if (!log)
		return;
	f = fopen(log, "a");
	if (!f)
		return;
	fprintf(f, "%s %zu\n", what, len);
	fclose(f);
}

int mlock(const void *addr, size_t len)
{
	(void)addr;
	note("mlock", len);
	return 0;
}

int munlock(const void *addr, size_t len)
{
	(void)addr;
	note("munlock", len);
	return 0;
}
