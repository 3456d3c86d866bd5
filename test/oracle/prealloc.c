/*
 * prealloc FILE OFFSET LENGTH: fallocate(2) with mode 0, which gives the
 * range's holes unwritten extents (and grows the size to cover it). Built
 * static by the tests, for the kernel oracle's busybox userland, whose
 * fallocate applet may be missing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: prealloc FILE OFFSET LENGTH\n");
		return 2;
	}
	int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	if (fallocate(fd, 0, strtoll(argv[2], NULL, 0), strtoll(argv[3], NULL, 0))) {
		perror("fallocate");
		return 1;
	}
	return 0;
}
