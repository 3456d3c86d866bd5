/*
 * setxattrs FILE PREFIX COUNT SIZE: sets COUNT extended attributes
 * PREFIX0 .. PREFIX<COUNT-1> on FILE, each SIZE bytes of a pattern that
 * depends on the attribute's number. Built static by the tests, so the
 * kernel oracle's busybox userland (which has no setfattr) can run it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/xattr.h>

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: setxattrs FILE PREFIX COUNT SIZE\n");
		return 2;
	}
	unsigned long count = strtoul(argv[3], NULL, 0);
	size_t size = strtoul(argv[4], NULL, 0);
	char *value = malloc(size + 1);
	char name[256];
	if (!value)
		return 1;
	for (unsigned long n = 0; n < count; n++) {
		for (size_t i = 0; i < size; i++)
			value[i] = (char)('a' + (i * 7 + n) % 26);
		snprintf(name, sizeof(name), "%s%lu", argv[2], n);
		if (setxattr(argv[1], name, value, size, 0)) {
			perror(name);
			return 1;
		}
	}
	return 0;
}
