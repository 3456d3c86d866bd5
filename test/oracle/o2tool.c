/*
 * o2tool: an OCFS2 writer and reader built on libocfs2 (ocfs2-tools), independent of
 * o2fuse's own code. Tests use it as the reference: a tree o2tool wrote must read the
 * same through o2fuse, and a tree o2fuse wrote must dump the same through o2tool.
 *
 *   o2tool populate IMAGE SPECFILE      build the tree SPECFILE describes ('-' = stdin)
 *   o2tool dump IMAGE [-f FIELDS] [-m] [PATH]
 *                                       one line per path under PATH (default /), sorted
 *   o2tool cat IMAGE PATH [OFFSET [LENGTH]]
 *                                       file content (or symlink target) to stdout
 *
 * The spec format (test/lib/spec.ts), the dump format (test/lib/dumpFormat.ts) and the
 * content generator (test/lib/content.ts) are documented, and reproduced, on the
 * TypeScript side; change both sides together.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ocfs2/ocfs2.h>

#include "sha256.h"

#define IO_CHUNK_BYTES (1024 * 1024)	/* multiple of every block size and of a 1M cluster */
#define MAX_SPEC_TOKENS 32
#define MAX_PATH_BYTES 4096

static const char *progname = "o2tool";
static int specLineNo;

static void fail_ret(errcode_t ret, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void fail_spec(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void fail_ret(errcode_t ret, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	if (specLineNo)
		fprintf(stderr, "spec line %d: ", specLineNo);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (ret)
		fprintf(stderr, ": %s", error_message(ret));
	fputc('\n', stderr);
	exit(1);
}

static void fail_spec(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	if (specLineNo)
		fprintf(stderr, "spec line %d: ", specLineNo);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		fail_ret(0, "out of memory");
	return p;
}

/* ---- content generator -------------------------------------------------------------
 * Position-addressed, so a range anywhere in a file can be produced without generating
 * everything before it. Byte x of stream SEED is byte (x & 3) (little-endian) of the
 * 32-bit word W(SEED, x >> 2), where for word index i = hi * 2^32 + lo:
 *     h = SEED ^ (hi * 0x85EBCA6B);  h = h + lo * 0x9E3779B1;
 *     h ^= h >> 16; h *= 0x85EBCA6B; h ^= h >> 13; h *= 0xC2B2AE35; h ^= h >> 16
 * (all arithmetic mod 2^32; the last line is murmur3's fmix32).
 */
static inline uint32_t gen_word(uint32_t seed, uint64_t wordIndex)
{
	uint32_t h = seed ^ ((uint32_t)(wordIndex >> 32) * 0x85EBCA6Bu);

	h += (uint32_t)wordIndex * 0x9E3779B1u;
	h ^= h >> 16;
	h *= 0x85EBCA6Bu;
	h ^= h >> 13;
	h *= 0xC2B2AE35u;
	h ^= h >> 16;
	return h;
}

static void gen_fill(uint32_t seed, uint64_t offsetBytes, uint8_t *dst, size_t lenBytes)
{
	size_t i;

	for (i = 0; i < lenBytes; i++) {
		uint64_t x = offsetBytes + i;
		dst[i] = (uint8_t)(gen_word(seed, x >> 2) >> (8 * (x & 3)));
	}
}

/* ---- percent encoding of names: any byte outside 0x21..0x7e, and '%', is %XX ---------- */
static char *pct_encode(const char *s, size_t len)
{
	char *out = xmalloc(len * 3 + 1), *o = out;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c >= 0x7f || c == '%')
			o += sprintf(o, "%%%02X", c);
		else
			*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes in place; returns the decoded length (names may then hold any byte but NUL). */
static size_t pct_decode(char *s)
{
	char *i = s, *o = s;

	while (*i) {
		if (*i == '%') {
			int hi = hexval(i[1]), lo = hi < 0 ? -1 : hexval(i[2]);
			if (hi < 0 || lo < 0)
				fail_spec("bad %%-escape in \"%s\"", s);
			if (hi == 0 && lo == 0)
				fail_spec("%%00 is not allowed in a name");
			*o++ = (char)(hi * 16 + lo);
			i += 3;
		} else
			*o++ = *i++;
	}
	*o = '\0';
	return (size_t)(o - s);
}

/* ---- numbers ----------------------------------------------------------------------- */
static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		fail_spec("bad %s \"%s\"", what, s);
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		fail_spec("bad %s \"%s\"", what, s);
	return v;
}

/* SEC[.FRACTION]: the fraction is decimal seconds, right-padded to nanoseconds. */
static void parse_time(const char *s, uint64_t *sec, uint32_t *nsec)
{
	char *end;
	const char *dot = strchr(s, '.');
	int digits = 0;

	errno = 0;
	*sec = strtoull(s, &end, 10);
	if (errno || end == s || (*end && *end != '.'))
		fail_spec("bad time \"%s\"", s);
	*nsec = 0;
	if (dot) {
		const char *p;
		for (p = dot + 1; *p; p++) {
			if (*p < '0' || *p > '9' || ++digits > 9)
				fail_spec("bad time \"%s\"", s);
			*nsec = *nsec * 10 + (uint32_t)(*p - '0');
		}
		for (; digits < 9; digits++)
			*nsec *= 10;
	}
}

/* ---- path resolution ----------------------------------------------------------------- */
static uint64_t lookup_path(ocfs2_filesys *fs, const char *path, errcode_t *retOut)
{
	uint64_t ino = fs->fs_root_blkno;
	const char *p = path;
	errcode_t ret = 0;

	while (*p) {
		const char *start;
		while (*p == '/')
			p++;
		if (!*p)
			break;
		start = p;
		while (*p && *p != '/')
			p++;
		ret = ocfs2_lookup(fs, ino, start, (int)(p - start), NULL, &ino);
		if (ret)
			break;
	}
	if (retOut)
		*retOut = ret;
	else if (ret)
		fail_ret(ret, "looking up %s", path);
	return ret ? 0 : ino;
}

/* Splits "/a/b/c" into the parent's inode and the last name ("c"); the parent must exist. */
static uint64_t parent_of(ocfs2_filesys *fs, char *path, const char **nameOut)
{
	char *slash = strrchr(path, '/');
	uint64_t parent;
	errcode_t ret;

	if (path[0] != '/' || !slash || !slash[1])
		fail_spec("path \"%s\" must be absolute and name an entry", path);
	if (strlen(slash + 1) > OCFS2_MAX_FILENAME_LEN)
		fail_spec("name \"%s\" is longer than %d bytes", slash + 1, OCFS2_MAX_FILENAME_LEN);
	*slash = '\0';
	parent = lookup_path(fs, path[0] ? path : "/", &ret);
	if (ret)
		fail_ret(ret, "parent \"%s\" of \"%s\" does not exist (create it first)", path, slash + 1);
	*slash = '/';
	*nameOut = slash + 1;
	if (ocfs2_check_directory(fs, parent))
		fail_spec("parent of \"%s\" is not a directory", path);
	lookup_path(fs, path, &ret);
	if (!ret)
		fail_spec("\"%s\" already exists", path);
	return parent;
}

static void add_entry(ocfs2_filesys *fs, uint64_t dir, const char *name, uint64_t ino, int fileType)
{
	errcode_t ret = ocfs2_link(fs, dir, name, ino, fileType);

	if (ret == OCFS2_ET_DIR_NO_SPACE) {
		/* libocfs2 leaves growing the directory to its caller */
		ret = ocfs2_expand_dir(fs, dir);
		if (!ret)
			ret = ocfs2_link(fs, dir, name, ino, fileType);
	}
	if (ret)
		fail_ret(ret, "adding entry \"%s\"", name);
}

/* ---- attributes ----------------------------------------------------------------------- */
struct attrs {
	int haveMode, haveUid, haveGid, haveAtime, haveMtime, haveCtime;
	uint32_t mode, uid, gid;
	uint64_t atime, mtime, ctime;
	uint32_t atimeNsec, mtimeNsec, ctimeNsec;
};

static void parse_attrs(char **tok, int ntok, struct attrs *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < ntok; i++) {
		char *eq = strchr(tok[i], '=');
		if (!eq)
			fail_spec("expected KEY=VALUE, got \"%s\"", tok[i]);
		*eq = '\0';
		if (!strcmp(tok[i], "mode")) {
			char *end;
			a->mode = (uint32_t)strtoul(eq + 1, &end, 8);
			if (*end || a->mode > 07777)
				fail_spec("bad mode \"%s\" (octal permission bits)", eq + 1);
			a->haveMode = 1;
		} else if (!strcmp(tok[i], "uid")) {
			a->uid = (uint32_t)parse_u64(eq + 1, "uid");
			a->haveUid = 1;
		} else if (!strcmp(tok[i], "gid")) {
			a->gid = (uint32_t)parse_u64(eq + 1, "gid");
			a->haveGid = 1;
		} else if (!strcmp(tok[i], "atime")) {
			parse_time(eq + 1, &a->atime, &a->atimeNsec);
			a->haveAtime = 1;
		} else if (!strcmp(tok[i], "mtime")) {
			parse_time(eq + 1, &a->mtime, &a->mtimeNsec);
			a->haveMtime = 1;
		} else if (!strcmp(tok[i], "ctime")) {
			parse_time(eq + 1, &a->ctime, &a->ctimeNsec);
			a->haveCtime = 1;
		} else
			fail_spec("unknown attribute \"%s\"", tok[i]);
	}
}

static void apply_attrs(ocfs2_filesys *fs, uint64_t ino, const struct attrs *a)
{
	ocfs2_cached_inode *ci = NULL;
	struct ocfs2_dinode *di;
	errcode_t ret = ocfs2_read_cached_inode(fs, ino, &ci);

	if (ret)
		fail_ret(ret, "reading inode %" PRIu64, ino);
	di = ci->ci_inode;
	if (a->haveMode)
		di->i_mode = (uint16_t)((di->i_mode & S_IFMT) | a->mode);
	if (a->haveUid)
		di->i_uid = a->uid;
	if (a->haveGid)
		di->i_gid = a->gid;
	if (a->haveAtime) {
		di->i_atime = a->atime;
		di->i_atime_nsec = a->atimeNsec;
	}
	if (a->haveMtime) {
		di->i_mtime = a->mtime;
		di->i_mtime_nsec = a->mtimeNsec;
	}
	if (a->haveCtime) {
		di->i_ctime = a->ctime;
		di->i_ctime_nsec = a->ctimeNsec;
	}
	ret = ocfs2_write_cached_inode(fs, ci);
	if (ret)
		fail_ret(ret, "writing inode %" PRIu64, ino);
	ocfs2_free_cached_inode(fs, ci);
}

/* ---- creating inodes ------------------------------------------------------------------ */

/*
 * libocfs2 1.8.7's ocfs2_init_dir, on a volume without inline-data but with directory
 * trailers (indexed-dirs or metaecc), leaves i_size at the trailer's offset instead of
 * the block size; the next block added to the directory then lands at a misaligned
 * offset and fsck sees garbage. An extent-based directory's size is whole blocks.
 */
static void fix_dir_size(ocfs2_filesys *fs, uint64_t ino)
{
	ocfs2_cached_inode *ci = NULL;
	uint64_t bs = fs->fs_blocksize;
	errcode_t ret = ocfs2_read_cached_inode(fs, ino, &ci);

	if (ret)
		fail_ret(ret, "reading inode %" PRIu64, ino);
	if (!(ci->ci_inode->i_dyn_features & OCFS2_INLINE_DATA_FL) && ci->ci_inode->i_size % bs) {
		ci->ci_inode->i_size = (ci->ci_inode->i_size + bs - 1) / bs * bs;
		ret = ocfs2_write_cached_inode(fs, ci);
		if (ret)
			fail_ret(ret, "writing inode %" PRIu64, ino);
	}
	ocfs2_free_cached_inode(fs, ci);
}
static uint64_t create_inode(ocfs2_filesys *fs, char *path, uint16_t mode, int fileType)
{
	const char *name;
	uint64_t parent = parent_of(fs, path, &name), ino;
	errcode_t ret = ocfs2_new_inode(fs, &ino, mode);

	if (ret)
		fail_ret(ret, "allocating an inode for %s", path);
	if (S_ISDIR(mode)) {
		/* writes "." and "..", and raises the parent's link count */
		ret = ocfs2_init_dir(fs, ino, parent);
		if (ret)
			fail_ret(ret, "initializing directory %s", path);
		fix_dir_size(fs, ino);
	}
	add_entry(fs, parent, name, ino, fileType);
	return ino;
}

static void set_size(ocfs2_filesys *fs, uint64_t ino, uint64_t sizeBytes)
{
	ocfs2_cached_inode *ci = NULL;
	errcode_t ret = ocfs2_read_cached_inode(fs, ino, &ci);

	if (ret)
		fail_ret(ret, "reading inode %" PRIu64, ino);
	ci->ci_inode->i_size = sizeBytes;
	ret = ocfs2_write_cached_inode(fs, ci);
	if (ret)
		fail_ret(ret, "writing inode %" PRIu64, ino);
	ocfs2_free_cached_inode(fs, ci);
}

/*
 * Writes generator bytes over [offsetBytes, offsetBytes + lenBytes) of an extent-based
 * file whose i_size already covers the range. libocfs2 writes whole blocks only, so each
 * chunk is read first (holes and unwritten extents read as zeros) and overlaid: ranges
 * that share a block keep each other's bytes.
 */
static void write_range(ocfs2_filesys *fs, uint64_t ino, uint32_t seed, uint64_t offsetBytes,
			uint64_t lenBytes)
{
	uint64_t bs = fs->fs_blocksize;
	uint64_t pos = offsetBytes & ~(bs - 1), end = offsetBytes + lenBytes;
	uint64_t endAligned = (end + bs - 1) & ~(bs - 1);
	char *buf;
	errcode_t ret = ocfs2_malloc_blocks(fs->fs_io, IO_CHUNK_BYTES / (int)bs, &buf);

	if (ret)
		fail_ret(ret, "allocating an I/O buffer");
	while (pos < endAligned) {
		ocfs2_cached_inode *ci = NULL;
		uint64_t chunk = endAligned - pos, from, to;
		uint32_t got = 0, wrote = 0;

		if (chunk > IO_CHUNK_BYTES)
			chunk = IO_CHUNK_BYTES;
		ret = ocfs2_read_cached_inode(fs, ino, &ci);
		if (ret)
			fail_ret(ret, "reading inode %" PRIu64, ino);
		memset(buf, 0, chunk);
		ret = ocfs2_file_read(ci, buf, (uint32_t)chunk, pos, &got);
		if (ret)
			fail_ret(ret, "reading inode %" PRIu64 " at %" PRIu64, ino, pos);
		from = pos > offsetBytes ? pos : offsetBytes;
		to = pos + chunk < end ? pos + chunk : end;
		gen_fill(seed, from, (uint8_t *)buf + (from - pos), to - from);
		ret = ocfs2_file_write(ci, buf, (uint32_t)chunk, pos, &wrote);
		if (ret)
			fail_ret(ret, "writing inode %" PRIu64 " at %" PRIu64, ino, pos);
		ocfs2_free_cached_inode(fs, ci);
		pos += chunk;
	}
	ocfs2_free(&buf);
}

/*
 * RANGES: OFF:LEN[,OFF:LEN]...; a leading 'u' makes the range unwritten (reads zeros);
 * "-" is no range at all (a file that is one hole).
 */
static void apply_ranges(ocfs2_filesys *fs, uint64_t ino, uint64_t sizeBytes, uint32_t seed, char *ranges)
{
	char *save = NULL, *r;

	if (!strcmp(ranges, "-"))
		return;
	for (r = strtok_r(ranges, ",", &save); r; r = strtok_r(NULL, ",", &save)) {
		int unwritten = (*r == 'u');
		char *colon = strchr(r, ':');
		uint64_t off, len;

		if (unwritten)
			r++;
		if (!colon)
			fail_spec("range \"%s\" is not OFF:LEN", r);
		*colon = '\0';
		off = parse_u64(r, "range offset");
		len = parse_u64(colon + 1, "range length");
		if (!len || off + len > sizeBytes)
			fail_spec("range %" PRIu64 ":%" PRIu64 " is empty or past SIZE %" PRIu64,
				  off, len, sizeBytes);
		if (unwritten) {
			errcode_t ret = ocfs2_allocate_unwritten_extents(fs, ino, off, len);
			if (ret)
				fail_ret(ret, "allocating unwritten extents %" PRIu64 ":%" PRIu64, off, len);
		} else
			write_range(fs, ino, seed, off, len);
	}
}

static void cmd_file(ocfs2_filesys *fs, char *path, uint64_t sizeBytes, uint32_t seed, char *ranges,
		     const struct attrs *a)
{
	uint64_t ino = create_inode(fs, path, S_IFREG | 0644, OCFS2_FT_REG_FILE);

	if (sizeBytes) {
		set_size(fs, ino, sizeBytes);
		if (ranges)
			apply_ranges(fs, ino, sizeBytes, seed, ranges);
		else
			write_range(fs, ino, seed, 0, sizeBytes);
	}
	apply_attrs(fs, ino, a);
}

static void cmd_inline(ocfs2_filesys *fs, char *path, uint64_t sizeBytes, uint32_t seed, const struct attrs *a)
{
	struct ocfs2_super_block *sb = OCFS2_RAW_SB(fs->fs_super);
	int maxInline = ocfs2_max_inline_data_with_xattr(fs->fs_blocksize, NULL);
	uint64_t ino;
	ocfs2_cached_inode *ci = NULL;
	errcode_t ret;
	uint8_t *data;

	if (!ocfs2_support_inline_data(sb))
		fail_spec("inline: the volume has no inline-data feature");
	if (sizeBytes > (uint64_t)maxInline)
		fail_spec("inline: %" PRIu64 " bytes do not fit (at most %d on this block size)",
			  sizeBytes, maxInline);
	ino = create_inode(fs, path, S_IFREG | 0644, OCFS2_FT_REG_FILE);
	ret = ocfs2_read_cached_inode(fs, ino, &ci);
	if (ret)
		fail_ret(ret, "reading inode %" PRIu64, ino);
	/* the kernel also gives an empty new file inline data; libocfs2 does it on write */
	ocfs2_set_inode_data_inline(fs, ci->ci_inode);
	ci->ci_inode->i_size = sizeBytes;
	data = (uint8_t *)ci->ci_inode->id2.i_data.id_data;
	gen_fill(seed, 0, data, sizeBytes);
	ret = ocfs2_write_cached_inode(fs, ci);
	if (ret)
		fail_ret(ret, "writing inode %" PRIu64, ino);
	ocfs2_free_cached_inode(fs, ci);
	apply_attrs(fs, ino, a);
}

static void cmd_symlink(ocfs2_filesys *fs, char *path, const char *target, const struct attrs *a)
{
	size_t len = strlen(target);
	uint64_t ino;
	ocfs2_cached_inode *ci = NULL;
	errcode_t ret;

	if (!len || len >= MAX_PATH_BYTES)
		fail_spec("symlink target must be 1..%d bytes", MAX_PATH_BYTES - 1);
	ino = create_inode(fs, path, S_IFLNK | 0777, OCFS2_FT_SYMLINK);
	ret = ocfs2_read_cached_inode(fs, ino, &ci);
	if (ret)
		fail_ret(ret, "reading inode %" PRIu64, ino);
	if (len + 1 <= (size_t)ocfs2_fast_symlink_chars(fs->fs_blocksize)) {
		/* fast symlink: the target and its NUL live in the inode, no clusters */
		memset(&ci->ci_inode->id2, 0, fs->fs_blocksize - offsetof(struct ocfs2_dinode, id2));
		memcpy(ci->ci_inode->id2.i_symlink, target, len + 1);
		ci->ci_inode->i_size = len;
		ret = ocfs2_write_cached_inode(fs, ci);
		if (ret)
			fail_ret(ret, "writing inode %" PRIu64, ino);
		ocfs2_free_cached_inode(fs, ci);
	} else {
		/* slow symlink: the target and its NUL in data blocks; i_size excludes the NUL */
		uint64_t bs = fs->fs_blocksize, padded = (len + 1 + bs - 1) & ~(bs - 1);
		char *buf;
		uint32_t wrote = 0;

		ocfs2_free_cached_inode(fs, ci);
		set_size(fs, ino, len + 1);
		ret = ocfs2_malloc_blocks(fs->fs_io, (int)(padded / bs), &buf);
		if (ret)
			fail_ret(ret, "allocating a buffer");
		memset(buf, 0, padded);
		memcpy(buf, target, len);
		ret = ocfs2_read_cached_inode(fs, ino, &ci);
		if (!ret)
			ret = ocfs2_file_write(ci, buf, (uint32_t)padded, 0, &wrote);
		if (ret)
			fail_ret(ret, "writing symlink target of %s", path);
		ocfs2_free_cached_inode(fs, ci);
		ocfs2_free(&buf);
		set_size(fs, ino, len);
	}
	apply_attrs(fs, ino, a);
}

static void cmd_link(ocfs2_filesys *fs, const char *existing, char *path)
{
	const char *name;
	uint64_t ino = lookup_path(fs, existing, NULL), parent;
	ocfs2_cached_inode *ci = NULL;
	errcode_t ret;
	int fileType;
	uint32_t links;

	ret = ocfs2_read_cached_inode(fs, ino, &ci);
	if (ret)
		fail_ret(ret, "reading inode %" PRIu64, ino);
	switch (ci->ci_inode->i_mode & S_IFMT) {
	case S_IFREG: fileType = OCFS2_FT_REG_FILE; break;
	case S_IFLNK: fileType = OCFS2_FT_SYMLINK; break;
	case S_IFIFO: fileType = OCFS2_FT_FIFO; break;
	case S_IFSOCK: fileType = OCFS2_FT_SOCK; break;
	case S_IFCHR: fileType = OCFS2_FT_CHRDEV; break;
	case S_IFBLK: fileType = OCFS2_FT_BLKDEV; break;
	default: fail_spec("link: %s is a directory", existing);
	}
	parent = parent_of(fs, path, &name);
	add_entry(fs, parent, name, ino, fileType);
	links = ci->ci_inode->i_links_count | ((uint32_t)ci->ci_inode->i_links_count_hi << 16);
	links++;
	ci->ci_inode->i_links_count = (uint16_t)links;
	ci->ci_inode->i_links_count_hi = (uint16_t)(links >> 16);
	ret = ocfs2_write_cached_inode(fs, ci);
	if (ret)
		fail_ret(ret, "writing inode %" PRIu64, ino);
	ocfs2_free_cached_inode(fs, ci);
}

static void cmd_node(ocfs2_filesys *fs, char *path, const char *kind, const char *majMin, const struct attrs *a)
{
	uint16_t mode;
	int fileType;
	uint64_t ino;

	if (!strcmp(kind, "fifo")) { mode = S_IFIFO | 0644; fileType = OCFS2_FT_FIFO; }
	else if (!strcmp(kind, "sock")) { mode = S_IFSOCK | 0755; fileType = OCFS2_FT_SOCK; }
	else if (!strcmp(kind, "chr")) { mode = S_IFCHR | 0644; fileType = OCFS2_FT_CHRDEV; }
	else if (!strcmp(kind, "blk")) { mode = S_IFBLK | 0644; fileType = OCFS2_FT_BLKDEV; }
	else fail_spec("node kind must be fifo, sock, chr or blk, not \"%s\"", kind);
	ino = create_inode(fs, path, mode, fileType);
	if (fileType == OCFS2_FT_CHRDEV || fileType == OCFS2_FT_BLKDEV) {
		ocfs2_cached_inode *ci = NULL;
		char *colon = majMin ? strchr(majMin, ':') : NULL;
		uint64_t major, minor;
		errcode_t ret;

		if (!colon)
			fail_spec("chr/blk need MAJOR:MINOR");
		*colon = '\0';
		major = parse_u64(majMin, "major");
		minor = parse_u64(colon + 1, "minor");
		ret = ocfs2_read_cached_inode(fs, ino, &ci);
		if (ret)
			fail_ret(ret, "reading inode %" PRIu64, ino);
		/* the kernel's huge_encode_dev (new_encode_dev) layout */
		ci->ci_inode->id1.dev1.i_rdev = (minor & 0xff) | (major << 8) | ((minor & ~0xffULL) << 12);
		ret = ocfs2_write_cached_inode(fs, ci);
		if (ret)
			fail_ret(ret, "writing inode %" PRIu64, ino);
		ocfs2_free_cached_inode(fs, ci);
	}
	apply_attrs(fs, ino, a);
}

static void cmd_dir(ocfs2_filesys *fs, char *path, uint64_t count, const struct attrs *a)
{
	uint64_t dir = create_inode(fs, path, S_IFDIR | 0755, OCFS2_FT_DIR), i;
	char name[32];

	for (i = 0; i < count; i++) {
		uint64_t ino;
		errcode_t ret = ocfs2_new_inode(fs, &ino, S_IFREG | 0644);
		if (ret)
			fail_ret(ret, "allocating an inode in %s", path);
		snprintf(name, sizeof(name), "f%05" PRIu64, i);
		add_entry(fs, dir, name, ino, OCFS2_FT_REG_FILE);
	}
	apply_attrs(fs, dir, a);
}

static int tokenize(char *line, char **tok)
{
	int n = 0;
	char *save = NULL, *t;

	for (t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == MAX_SPEC_TOKENS)
			fail_spec("too many tokens");
		tok[n++] = t;
	}
	return n;
}

static void need(int ntok, int atLeast, const char *usage)
{
	if (ntok < atLeast)
		fail_spec("usage: %s", usage);
}

static void populate(const char *image, const char *specPath)
{
	FILE *spec = strcmp(specPath, "-") ? fopen(specPath, "r") : stdin;
	ocfs2_filesys *fs;
	char *line = NULL;
	size_t cap = 0;
	errcode_t ret;

	if (!spec)
		fail_ret(0, "cannot open %s: %s", specPath, strerror(errno));
	ret = ocfs2_open(image, OCFS2_FLAG_RW | OCFS2_FLAG_BUFFERED, 0, 0, &fs);
	if (ret)
		fail_ret(ret, "opening %s", image);
	while (getline(&line, &cap, spec) >= 0) {
		char *tok[MAX_SPEC_TOKENS];
		int ntok;
		struct attrs a;

		specLineNo++;
		ntok = tokenize(line, tok);
		if (!ntok || tok[0][0] == '#')
			continue;
		if (!strcmp(tok[0], "mkdir")) {
			need(ntok, 2, "mkdir PATH [ATTR...]");
			parse_attrs(tok + 2, ntok - 2, &a);
			pct_decode(tok[1]);
			apply_attrs(fs, create_inode(fs, tok[1], S_IFDIR | 0755, OCFS2_FT_DIR), &a);
		} else if (!strcmp(tok[0], "file")) {
			need(ntok, 4, "file PATH SIZE SEED [ATTR...]");
			parse_attrs(tok + 4, ntok - 4, &a);
			pct_decode(tok[1]);
			cmd_file(fs, tok[1], parse_u64(tok[2], "size"), (uint32_t)parse_u64(tok[3], "seed"), NULL, &a);
		} else if (!strcmp(tok[0], "sparse")) {
			need(ntok, 5, "sparse PATH SIZE SEED RANGES [ATTR...]");
			parse_attrs(tok + 5, ntok - 5, &a);
			pct_decode(tok[1]);
			cmd_file(fs, tok[1], parse_u64(tok[2], "size"), (uint32_t)parse_u64(tok[3], "seed"), tok[4], &a);
		} else if (!strcmp(tok[0], "unwritten")) {
			char ranges[64];
			uint64_t size;
			need(ntok, 3, "unwritten PATH SIZE [ATTR...]");
			parse_attrs(tok + 3, ntok - 3, &a);
			pct_decode(tok[1]);
			size = parse_u64(tok[2], "size");
			snprintf(ranges, sizeof(ranges), "u0:%" PRIu64, size);
			cmd_file(fs, tok[1], size, 0, size ? ranges : NULL, &a);
		} else if (!strcmp(tok[0], "inline")) {
			need(ntok, 4, "inline PATH SIZE SEED [ATTR...]");
			parse_attrs(tok + 4, ntok - 4, &a);
			pct_decode(tok[1]);
			cmd_inline(fs, tok[1], parse_u64(tok[2], "size"), (uint32_t)parse_u64(tok[3], "seed"), &a);
		} else if (!strcmp(tok[0], "symlink")) {
			need(ntok, 3, "symlink PATH TARGET [ATTR...]");
			parse_attrs(tok + 3, ntok - 3, &a);
			pct_decode(tok[1]);
			pct_decode(tok[2]);
			cmd_symlink(fs, tok[1], tok[2], &a);
		} else if (!strcmp(tok[0], "link")) {
			need(ntok, 3, "link EXISTING NEWPATH");
			if (ntok > 3)
				fail_spec("link takes no attributes (they belong to the inode)");
			pct_decode(tok[1]);
			pct_decode(tok[2]);
			cmd_link(fs, tok[1], tok[2]);
		} else if (!strcmp(tok[0], "node")) {
			int hasDev;
			need(ntok, 3, "node PATH fifo|sock|chr|blk [MAJOR:MINOR] [ATTR...]");
			hasDev = ntok > 3 && !strchr(tok[3], '=');
			parse_attrs(tok + 3 + hasDev, ntok - 3 - hasDev, &a);
			pct_decode(tok[1]);
			cmd_node(fs, tok[1], tok[2], hasDev ? tok[3] : NULL, &a);
		} else if (!strcmp(tok[0], "dir")) {
			need(ntok, 3, "dir PATH N [ATTR...]");
			parse_attrs(tok + 3, ntok - 3, &a);
			pct_decode(tok[1]);
			cmd_dir(fs, tok[1], parse_u64(tok[2], "count"), &a);
		} else
			fail_spec("unknown command \"%s\"", tok[0]);
	}
	specLineNo = 0;
	free(line);
	if (spec != stdin)
		fclose(spec);
	ret = ocfs2_close(fs);
	if (ret)
		fail_ret(ret, "closing %s", image);
}

/* ---- reading ------------------------------------------------------------------------ */

/*
 * Calls sink on the file's bytes [fromBytes, fromBytes + lenBytes) clipped to i_size, in
 * order; holes and unwritten extents read as zeros. lenBytes UINT64_MAX = to the end.
 */
static void read_range(ocfs2_filesys *fs, uint64_t ino, uint64_t fromBytes, uint64_t lenBytes,
		       void (*sink)(const void *data, size_t len, void *priv), void *priv)
{
	ocfs2_cached_inode *ci = NULL;
	uint64_t size, end, pos, bs = fs->fs_blocksize;
	char *buf;
	errcode_t ret = ocfs2_read_cached_inode(fs, ino, &ci);

	if (ret)
		fail_ret(ret, "reading inode %" PRIu64, ino);
	size = ci->ci_inode->i_size;
	end = lenBytes > size - (fromBytes < size ? fromBytes : size) ? size : fromBytes + lenBytes;
	ret = ocfs2_malloc_blocks(fs->fs_io, IO_CHUNK_BYTES / (int)bs, &buf);
	if (ret)
		fail_ret(ret, "allocating an I/O buffer");
	if (fromBytes >= end) {
		/* nothing to read */
	} else if (ci->ci_inode->i_dyn_features & OCFS2_INLINE_DATA_FL) {
		uint32_t got = 0;
		ret = ocfs2_file_read(ci, buf, (uint32_t)size, 0, &got);
		if (ret || got != size)
			fail_ret(ret, "reading inline data of inode %" PRIu64, ino);
		sink(buf + fromBytes, end - fromBytes, priv);
	} else {
		/* libocfs2 reads whole blocks: start at the block holding fromBytes */
		for (pos = fromBytes & ~(bs - 1); pos < end;) {
			uint64_t want = end - pos, skip = pos < fromBytes ? fromBytes - pos : 0;
			uint32_t got = 0;
			if (want > IO_CHUNK_BYTES)
				want = IO_CHUNK_BYTES;
			ret = ocfs2_file_read(ci, buf, (uint32_t)((want + bs - 1) & ~(bs - 1)), pos, &got);
			if (ret)
				fail_ret(ret, "reading inode %" PRIu64 " at %" PRIu64, ino, pos);
			if (got < want)
				fail_ret(0, "short read of inode %" PRIu64 " at %" PRIu64, ino, pos);
			sink(buf + skip, want - skip, priv);
			pos += want;
		}
	}
	ocfs2_free(&buf);
	ocfs2_free_cached_inode(fs, ci);
}

static void read_content(ocfs2_filesys *fs, uint64_t ino,
			 void (*sink)(const void *data, size_t len, void *priv), void *priv)
{
	read_range(fs, ino, 0, UINT64_MAX, sink, priv);
}

static void sink_sha(const void *data, size_t len, void *priv)
{
	sha256_update(priv, data, len);
}

static void sink_stdout(const void *data, size_t len, void *priv)
{
	(void)priv;
	if (fwrite(data, 1, len, stdout) != len)
		fail_ret(0, "writing stdout: %s", strerror(errno));
}

struct collect {
	char *buf;
	size_t len;
};

static void sink_collect(const void *data, size_t len, void *priv)
{
	struct collect *c = priv;
	c->buf = realloc(c->buf, c->len + len + 1);
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	c->buf[c->len] = '\0';
}

/* The symlink target, NUL-terminated, malloc'd. */
static char *read_symlink(ocfs2_filesys *fs, struct ocfs2_dinode *di, size_t *lenOut)
{
	if (di->i_clusters == 0) {
		size_t max = ocfs2_fast_symlink_chars(fs->fs_blocksize);
		size_t len = strnlen((char *)di->id2.i_symlink, max);
		char *t = xmalloc(len + 1);
		memcpy(t, di->id2.i_symlink, len);
		*lenOut = len;
		return t;
	} else {
		struct collect c = { NULL, 0 };
		read_content(fs, di->i_blkno, sink_collect, &c);
		*lenOut = c.len;
		return c.buf ? c.buf : xmalloc(1);
	}
}

/* Fields in dump order. "data" is sha256= (files), target= (symlinks) or rdev= (devices). */
enum { F_MODE, F_UID, F_GID, F_NLINK, F_SIZE, F_INO, F_ATIME, F_MTIME, F_CTIME, F_DATA, F_MAP, F_COUNT };
static const char *const fieldNames[F_COUNT] = {
	"mode", "uid", "gid", "nlink", "size", "ino", "atime", "mtime", "ctime", "data", "map",
};
static int fieldOn[F_COUNT] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 };

struct line {
	char *path;
	char *text;
};

static struct line *lines;
static size_t nlines, caplines;

struct strbuf {
	char *s;
	size_t len, cap;
};

static void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (b->s && (size_t)n < b->cap - b->len)
			break;
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			fail_ret(0, "out of memory");
	}
	b->len += (size_t)n;
}

/* leaf extent records of one inode, collected then sorted by cpos */
struct mapctx {
	struct { uint32_t cpos, clusters; int unwritten; } *recs;	/* cpos first: cmp_rec */
	size_t nrecs, caprecs;
};

static int map_rec(ocfs2_filesys *fs, struct ocfs2_extent_rec *rec, int treeDepth, uint32_t ccount,
		   uint64_t refBlkno, int refRecno, void *priv)
{
	struct mapctx *m = priv;

	(void)fs; (void)ccount; (void)refBlkno; (void)refRecno;
	if (treeDepth != 0 || !rec->e_leaf_clusters)
		return 0;
	if (m->nrecs == m->caprecs) {
		m->caprecs = m->caprecs ? m->caprecs * 2 : 16;
		m->recs = realloc(m->recs, m->caprecs * sizeof(*m->recs));
	}
	m->recs[m->nrecs].cpos = rec->e_cpos;
	m->recs[m->nrecs].clusters = rec->e_leaf_clusters;
	m->recs[m->nrecs].unwritten = !!(rec->e_flags & OCFS2_EXT_UNWRITTEN);
	m->nrecs++;
	return 0;
}

static int cmp_rec(const void *a, const void *b)
{
	const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * map=OFF+LEN[u],... in bytes: the file's allocated ranges in logical order, logically
 * adjacent records of the same kind merged (physical placement is an implementation's
 * choice and is left out); 'u' marks unwritten. "map=inline" for inline data, "map=-"
 * for no allocation.
 */
static void append_map(ocfs2_filesys *fs, struct ocfs2_dinode *di, struct strbuf *b)
{
	struct mapctx m = { NULL, 0, 0 };
	uint64_t clusterBytes = fs->fs_clustersize;
	char *blockBuf;
	size_t i;
	int first = 1;
	errcode_t ret;

	if (di->i_dyn_features & OCFS2_INLINE_DATA_FL) {
		sb_printf(b, " map=inline");
		return;
	}
	ret = ocfs2_malloc_blocks(fs->fs_io, 3, &blockBuf);
	if (ret)
		fail_ret(ret, "allocating a buffer");
	ret = ocfs2_extent_iterate_inode(fs, di, 0, blockBuf, map_rec, &m);
	if (ret)
		fail_ret(ret, "iterating extents of inode %" PRIu64, (uint64_t)di->i_blkno);
	ocfs2_free(&blockBuf);
	qsort(m.recs, m.nrecs, sizeof(*m.recs), cmp_rec);
	sb_printf(b, " map=");
	for (i = 0; i < m.nrecs; i++) {
		uint64_t start = (uint64_t)m.recs[i].cpos * clusterBytes;
		uint64_t len = (uint64_t)m.recs[i].clusters * clusterBytes;
		int u = m.recs[i].unwritten;
		while (i + 1 < m.nrecs && m.recs[i + 1].unwritten == u &&
		       (uint64_t)m.recs[i + 1].cpos * clusterBytes == start + len) {
			i++;
			len += (uint64_t)m.recs[i].clusters * clusterBytes;
		}
		sb_printf(b, "%s%" PRIu64 "+%" PRIu64 "%s", first ? "" : ",", start, len, u ? "u" : "");
		first = 0;
	}
	if (first)
		sb_printf(b, "-");
	free(m.recs);
}

static const char *type_name(uint16_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "sock";
	case S_IFCHR: return "chr";
	case S_IFBLK: return "blk";
	default: return "unknown";
	}
}

static void describe(ocfs2_filesys *fs, struct ocfs2_dinode *di, const char *encodedPath)
{
	struct strbuf b = { NULL, 0, 0 };
	uint16_t fmt = di->i_mode & S_IFMT;

	sb_printf(&b, "%s %s", encodedPath, type_name(di->i_mode));
	if (fieldOn[F_MODE])
		sb_printf(&b, " mode=%04o", di->i_mode & 07777);
	if (fieldOn[F_UID])
		sb_printf(&b, " uid=%" PRIu32, (uint32_t)di->i_uid);
	if (fieldOn[F_GID])
		sb_printf(&b, " gid=%" PRIu32, (uint32_t)di->i_gid);
	if (fieldOn[F_NLINK])
		sb_printf(&b, " nlink=%" PRIu32, (uint32_t)di->i_links_count | ((uint32_t)di->i_links_count_hi << 16));
	if (fieldOn[F_SIZE])
		sb_printf(&b, " size=%" PRIu64, (uint64_t)di->i_size);
	if (fieldOn[F_INO])
		sb_printf(&b, " ino=%" PRIu64, (uint64_t)di->i_blkno);
	if (fieldOn[F_ATIME])
		sb_printf(&b, " atime=%" PRIu64 ".%09" PRIu32, (uint64_t)di->i_atime, (uint32_t)di->i_atime_nsec);
	if (fieldOn[F_MTIME])
		sb_printf(&b, " mtime=%" PRIu64 ".%09" PRIu32, (uint64_t)di->i_mtime, (uint32_t)di->i_mtime_nsec);
	if (fieldOn[F_CTIME])
		sb_printf(&b, " ctime=%" PRIu64 ".%09" PRIu32, (uint64_t)di->i_ctime, (uint32_t)di->i_ctime_nsec);
	if (fieldOn[F_DATA]) {
		if (fmt == S_IFREG) {
			struct sha256 h;
			char hex[65];
			sha256_init(&h);
			read_content(fs, di->i_blkno, sink_sha, &h);
			sha256_hex(&h, hex);
			sb_printf(&b, " sha256=%s", hex);
		} else if (fmt == S_IFLNK) {
			size_t len;
			char *target = read_symlink(fs, di, &len);
			char *enc = pct_encode(target, len);
			sb_printf(&b, " target=%s", enc);
			free(enc);
			free(target);
		} else if (fmt == S_IFCHR || fmt == S_IFBLK) {
			uint64_t dev = di->id1.dev1.i_rdev;
			sb_printf(&b, " rdev=%" PRIu64 ":%" PRIu64, (dev & 0xfff00) >> 8,
				  (dev & 0xff) | ((dev >> 12) & 0xfff00));
		}
	}
	if (fieldOn[F_MAP] && fmt == S_IFREG)
		append_map(fs, di, &b);
	if (nlines == caplines) {
		caplines = caplines ? caplines * 2 : 256;
		lines = realloc(lines, caplines * sizeof(*lines));
	}
	lines[nlines].path = strdup(encodedPath);
	lines[nlines].text = b.s;
	nlines++;
}

struct entry {
	char *name;
	size_t nameLen;
	uint64_t ino;
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static int collect_entry(struct ocfs2_dir_entry *de, uint64_t blocknr, int offset, int blocksize,
			 char *buf, void *priv)
{
	struct entries *e = priv;

	(void)blocknr; (void)offset; (void)blocksize; (void)buf;
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 64;
		e->v = realloc(e->v, e->cap * sizeof(*e->v));
	}
	e->v[e->n].nameLen = de->name_len;
	e->v[e->n].name = xmalloc(de->name_len + 1);
	memcpy(e->v[e->n].name, de->name, de->name_len);
	e->v[e->n].ino = de->inode;
	e->n++;
	return 0;
}

static void walk(ocfs2_filesys *fs, uint64_t ino, const char *encodedPath, int depth)
{
	char *buf;
	struct ocfs2_dinode *di;
	errcode_t ret = ocfs2_malloc_block(fs->fs_io, &buf);

	if (ret)
		fail_ret(ret, "allocating a buffer");
	if (depth > 256)
		fail_ret(0, "directory tree deeper than 256 at %s (a loop?)", encodedPath);
	ret = ocfs2_read_inode(fs, ino, buf);
	if (ret)
		fail_ret(ret, "reading inode %" PRIu64 " (%s)", ino, encodedPath);
	di = (struct ocfs2_dinode *)buf;
	describe(fs, di, encodedPath);
	if (S_ISDIR(di->i_mode)) {
		struct entries e = { NULL, 0, 0 };
		size_t i;
		ret = ocfs2_dir_iterate(fs, ino, OCFS2_DIRENT_FLAG_EXCLUDE_DOTS, NULL, collect_entry, &e);
		if (ret)
			fail_ret(ret, "listing directory %s", encodedPath);
		for (i = 0; i < e.n; i++) {
			char *encName = pct_encode(e.v[i].name, e.v[i].nameLen);
			char *child;
			if (asprintf(&child, "%s/%s", strcmp(encodedPath, "/") ? encodedPath : "", encName) < 0)
				fail_ret(0, "out of memory");
			walk(fs, e.v[i].ino, child, depth + 1);
			free(child);
			free(encName);
			free(e.v[i].name);
		}
		free(e.v);
	}
	ocfs2_free(&buf);
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(((const struct line *)a)->path, ((const struct line *)b)->path);
}

static void parse_fields(char *list)
{
	char *save = NULL, *f;
	int i;

	for (i = 0; i < F_COUNT; i++)
		fieldOn[i] = 0;
	for (f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < F_COUNT && strcmp(f, fieldNames[i]); i++)
			;
		if (i == F_COUNT)
			fail_ret(0, "unknown field \"%s\" (mode,uid,gid,nlink,size,ino,atime,mtime,ctime,data,map)", f);
		fieldOn[i] = 1;
	}
}

static void dump(const char *image, int argc, char **argv)
{
	ocfs2_filesys *fs;
	const char *start = "/";
	char *startCopy, *encStart;
	size_t i;
	int opt;
	errcode_t ret;

	optind = 1;
	while ((opt = getopt(argc, argv, "f:m")) != -1) {
		if (opt == 'f')
			parse_fields(optarg);
		else if (opt == 'm')
			fieldOn[F_MAP] = 1;
		else
			fail_ret(0, "usage: o2tool dump IMAGE [-f FIELDS] [-m] [PATH]");
	}
	if (optind < argc)
		start = argv[optind];
	ret = ocfs2_open(image, OCFS2_FLAG_RO | OCFS2_FLAG_BUFFERED, 0, 0, &fs);
	if (ret)
		fail_ret(ret, "opening %s", image);
	startCopy = strdup(start);
	pct_decode(startCopy);
	encStart = pct_encode(startCopy, strlen(startCopy));
	/* strip a trailing slash so children read "/a/b", not "/a//b" */
	while (strlen(encStart) > 1 && encStart[strlen(encStart) - 1] == '/')
		encStart[strlen(encStart) - 1] = '\0';
	walk(fs, lookup_path(fs, startCopy, NULL), encStart, 0);
	qsort(lines, nlines, sizeof(*lines), cmp_line);
	for (i = 0; i < nlines; i++)
		printf("%s\n", lines[i].text);
	ocfs2_close(fs);
}

static void cat(const char *image, const char *path, uint64_t fromBytes, uint64_t lenBytes)
{
	ocfs2_filesys *fs;
	char *buf, *p = strdup(path);
	struct ocfs2_dinode *di;
	uint64_t ino;
	errcode_t ret = ocfs2_open(image, OCFS2_FLAG_RO | OCFS2_FLAG_BUFFERED, 0, 0, &fs);

	if (ret)
		fail_ret(ret, "opening %s", image);
	pct_decode(p);
	ino = lookup_path(fs, p, NULL);
	ret = ocfs2_malloc_block(fs->fs_io, &buf);
	if (!ret)
		ret = ocfs2_read_inode(fs, ino, buf);
	if (ret)
		fail_ret(ret, "reading %s", path);
	di = (struct ocfs2_dinode *)buf;
	if (S_ISREG(di->i_mode))
		read_range(fs, ino, fromBytes, lenBytes, sink_stdout, NULL);
	else if (S_ISLNK(di->i_mode)) {
		size_t len;
		char *t = read_symlink(fs, di, &len);
		sink_stdout(t, len, NULL);
		free(t);
	} else
		fail_ret(0, "%s is a %s, not a file or symlink", path, type_name(di->i_mode));
	fflush(stdout);
	ocfs2_free(&buf);
	ocfs2_close(fs);
}

int main(int argc, char **argv)
{
	initialize_ocfs_error_table();
	if (argc >= 4 && !strcmp(argv[1], "populate"))
		populate(argv[2], argv[3]);
	else if (argc >= 3 && !strcmp(argv[1], "dump"))
		dump(argv[2], argc - 2, argv + 2);
	else if (argc >= 4 && argc <= 6 && !strcmp(argv[1], "cat"))
		cat(argv[2], argv[3], argc > 4 ? parse_u64(argv[4], "offset") : 0,
		    argc > 5 ? parse_u64(argv[5], "length") : UINT64_MAX);
	else {
		fprintf(stderr,
			"usage: o2tool populate IMAGE SPECFILE|-\n"
			"       o2tool dump IMAGE [-f FIELDS] [-m] [PATH]\n"
			"       o2tool cat IMAGE PATH [OFFSET [LENGTH]]\n");
		return 2;
	}
	return 0;
}
