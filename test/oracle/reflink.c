/*
 * reflink SOURCE TARGET: OCFS2's reflink ioctl (OCFS2_IOC_REFLINK), which
 * makes TARGET share SOURCE's clusters through a refcount tree. Built static
 * by the tests, for the kernel oracle's busybox userland, which has no
 * reflink tool.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>

struct reflink_arguments {
	uint64_t old_path;
	uint64_t new_path;
	uint64_t preserve;
};

#define OCFS2_IOC_REFLINK _IOW('o', 4, struct reflink_arguments)

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: reflink SOURCE TARGET\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	struct reflink_arguments a = { (uintptr_t)argv[1], (uintptr_t)argv[2], 0 };
	if (ioctl(fd, OCFS2_IOC_REFLINK, &a)) {
		perror("reflink");
		return 1;
	}
	return 0;
}
