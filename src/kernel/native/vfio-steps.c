/*
 * vfio-steps: runs scripted test steps against the Linux VFIO device migration uAPI
 * (include/uapi/linux/vfio.h, drivers/vfio/vfio_main.c) and prints one JSON line per step.
 *
 * It runs as a static binary inside the initramfs that scripts/vfio-vm.sh builds, on mdevs of the
 * kernel's sample driver samples/vfio-mdev/mtty.c, and reaches them by the legacy route: container
 * /dev/vfio/vfio, group /dev/vfio/N (the mdev's emulated IOMMU group), VFIO_SET_IOMMU
 * VFIO_TYPE1v2_IOMMU, VFIO_GROUP_GET_DEVICE_FD with the mdev's uuid. It is compiled against the
 * vfio.h of the kernel it runs on (-I .cache/vfio-vm/src/include/uapi), so every constant is exact.
 *
 * Usage:  vfio-steps -d <uuid> [-d <uuid>] <script>...
 *
 * Output (stdout, the serial console): every line starts with "@@ " so that kernel messages on the
 * same console can be told apart; after the marker one flat JSON object:
 *   {"ready":true,"devices":2,"uuids":[...],"kernel":"6.12…","uptime_ms":N}    once, at start
 *   {"case":"<name>","ok":true,"state":2}                                      per CASE line
 *   {"op":"SET","arg":6,"ret":0,"errno":null,"data_fd":"new","fd_mode":"r","state":6}   per step
 *   {"end":true,"cases":C,"steps":S,"tainted":T}                               after each script
 *   {"fatal":"<what>","errno":"<E…>"}                                          set-up failed; exit 1
 * Every step line carries "ret" (the syscall's return: 0, a byte count or -1), "errno" (the symbolic
 * name, e.g. "EINVAL", or null) and "state" (a VFIO_DEVICE_FEATURE GET of the selected device's
 * migration state right after the step, a number; null if that GET failed). "dev" is added when the
 * selected device is not 0. A script line that cannot be parsed gives {"op":…,"error":"…","line":N,
 * "state":…} and the script goes on: one output line per script line, always.
 *
 * Script (text, one command per line; blank lines and lines starting with '#' are skipped):
 *   CASE <name>        start a case: close every data fd held (all devices), VFIO_DEVICE_RESET every
 *                      device, forget the saved images, select device 0; prints the "case" line, whose
 *                      "ok" says that every reset returned 0 and every device reads back RUNNING
 *   DEVICE <i>         select device i (0 or 1) for the following steps
 *   SET <n>            VFIO_DEVICE_FEATURE SET MIG_DEVICE_STATE, device_state = n (any u32, so also
 *                      0 = ERROR and >= 8). "data_fd": -1, or "new" with "fd_mode" "r"|"w"|"rw"
 *                      (fcntl F_GETFL). The device has one data fd slot: a new fd replaces it and the
 *                      previous fd is closed (as QEMU does). A new read-only fd starts a new saved image.
 *   GET                the state ("state" is the GET itself)
 *   READ <len>         read(slot, len): "ret" is the byte count. An empty slot is read as fd -1, so the
 *                      kernel's own answer (EBADF) is reported. Bytes read are appended to the device's
 *                      saved image ("saved": its length afterwards).
 *   WRITE <len> <what> [<from>]   write(slot, ...) of "len" bytes: what = "saved" (the next bytes of
 *                      device <from>'s saved image, default the selected device; fewer if fewer are
 *                      left), "zero" (zero bytes) or "corrupt" (as saved, but the image's first 8 bytes,
 *                      mtty's magic, inverted). "arg" is the length asked for, "len" what was passed to
 *                      write(). The device's write offset into the image advances by what write()
 *                      accepted, whatever "what" is, and restarts at 0 with every new write-only fd.
 *   PRECOPY_INFO       VFIO_MIG_GET_PRECOPY_INFO on the slot (argsz = sizeof, flags = 0 in):
 *                      "initial_bytes", "dirty_bytes", "flags" when it succeeds
 *   DATA_SIZE          VFIO_DEVICE_FEATURE GET MIG_DATA_SIZE: "stop_copy_length"
 *   PROBE              the read-backs, moving no byte: MIG_DATA_SIZE ("ret", "stop_copy_length") and a
 *                      zero-length read (O_RDONLY slot) or write (O_WRONLY) on the slot: "fd_mode" and
 *                      "probe" (its return), "probe_errno" when it failed; "data_fd": -1 for an empty slot
 *   MIGRATION_FLAGS    VFIO_DEVICE_FEATURE GET MIGRATION: "flags"
 *   PRECOPY_INFO_V2    VFIO_DEVICE_FEATURE SET of the PRECOPY_INFOv2 opt-in (no payload). Linux 7.1
 *                      added it (d7140b5dde45, VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 = 12); when the
 *                      header in use lacks the name, the raw number 12 is used and "hdr" is false, so
 *                      a 6.12 kernel answers for itself (ENOTTY: mtty has no device_feature op).
 *   RESET              VFIO_DEVICE_RESET; data fds are left open (CASE closes them)
 *   CLOSE              close(slot); the slot is empty afterwards (an empty slot is closed as fd -1)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* the kernel's own uapi header, not yet through "make headers_install", which strips __user */
#ifndef __user
#define __user
#endif
#include <linux/vfio.h>

#ifdef VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2
#define PRECOPY_INFO_V2_FEATURE VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2
#define PRECOPY_INFO_V2_IN_HEADER 1
#else
#define PRECOPY_INFO_V2_FEATURE 12 /* upstream d7140b5dde45 (v7.1) */
#define PRECOPY_INFO_V2_IN_HEADER 0
#endif

#define MARK "@@ "
#define MAX_DEVICES 2
#define IMAGE_MAX 65536
#define IO_MAX (1 << 20)

struct device {
	const char *uuid;
	int group;
	int fd;
	int data_fd; /* the slot; -1 when empty */
	unsigned char image[IMAGE_MAX]; /* bytes read from the saving fds since the last new one */
	size_t image_len;
	size_t write_off; /* into the image being written, since the last new write-only fd */
};

static struct device devices[MAX_DEVICES];
static int ndevices;
static int container = -1;
static struct device *cur;
static unsigned char iobuf[IO_MAX];

/* ---- one JSON line ---------------------------------------------------------------------------- */

static char line[16384];
static size_t len;

static void jraw(const char *s)
{
	size_t n = strlen(s);
	if (len + n < sizeof(line) - 2) {
		memcpy(line + len, s, n);
		len += n;
	}
}

static void jkey(const char *key)
{
	if (len > strlen(MARK) + 1)
		jraw(",");
	jraw("\"");
	jraw(key);
	jraw("\":");
}

static void jbegin(void)
{
	len = 0;
	jraw(MARK "{");
}

static void jint(const char *key, long long v)
{
	char b[32];
	snprintf(b, sizeof(b), "%lld", v);
	jkey(key);
	jraw(b);
}

static void juint(const char *key, unsigned long long v)
{
	char b[32];
	snprintf(b, sizeof(b), "%llu", v);
	jkey(key);
	jraw(b);
}

static void jstr(const char *key, const char *s)
{
	char b[8];
	jkey(key);
	if (!s) {
		jraw("null");
		return;
	}
	jraw("\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			b[0] = '\\';
			b[1] = (char)c;
			b[2] = 0;
		} else if (c < 0x20 || c >= 0x7f) {
			snprintf(b, sizeof(b), "\\u%04x", c);
		} else {
			b[0] = (char)c;
			b[1] = 0;
		}
		jraw(b);
	}
	jraw("\"");
}

static void jbool(const char *key, int v)
{
	jkey(key);
	jraw(v ? "true" : "false");
}

static void jend(void)
{
	size_t off = 0;
	line[len++] = '}';
	line[len++] = '\n';
	while (off < len) {
		ssize_t n = write(1, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
}

static const char *errname(int e)
{
	static char b[16];
	const char *n = strerrorname_np(e);
	if (n)
		return n;
	snprintf(b, sizeof(b), "E%d", e);
	return b;
}

/* "ret" and "errno" of a syscall that returned r with errno e */
static void jret(long long r, int e)
{
	jint("ret", r);
	jstr("errno", r < 0 ? errname(e) : NULL);
}

/* ---- the uAPI --------------------------------------------------------------------------------- */

/* VFIO_DEVICE_FEATURE with a payload of n bytes at data; returns the ioctl's result, errno kept */
static int feature(int fd, uint32_t flags, void *data, size_t n)
{
	uint64_t buf[(sizeof(struct vfio_device_feature) + 64) / 8] = {0};
	struct vfio_device_feature *f = (struct vfio_device_feature *)buf;
	int r;

	f->argsz = (uint32_t)(sizeof(*f) + n);
	f->flags = flags;
	memcpy(f->data, data, n);
	r = ioctl(fd, VFIO_DEVICE_FEATURE, f);
	memcpy(data, f->data, n);
	return r;
}

static long long get_state(struct device *d)
{
	struct vfio_device_feature_mig_state m = {.data_fd = -1};
	int saved = errno;
	int r = feature(d->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));
	errno = saved;
	return r < 0 ? -1 : (long long)m.device_state;
}

static void emit_state(void)
{
	long long s = get_state(cur);
	if (s < 0)
		jstr("state", NULL);
	else
		jint("state", s);
}

static void begin_op(const char *op)
{
	jbegin();
	jstr("op", op);
	if (cur != &devices[0])
		jint("dev", cur - devices);
}

static void end_op(void)
{
	emit_state();
	jend();
}

/*
 * Wait until the console has sent everything: /init powers off right after this program, and the
 * kernel's "reboot: Power down" would otherwise land in the middle of the last lines still queued
 * in the tty.
 */
static void drain(void)
{
	tcdrain(1);
}

static void fatal(const char *what, int e)
{
	jbegin();
	jstr("fatal", what);
	jstr("errno", e ? errname(e) : NULL);
	jend();
	drain();
	exit(1);
}

static int open_device(struct device *d)
{
	char path[PATH_MAX], link[PATH_MAX];
	struct vfio_group_status status = {.argsz = sizeof(status)};
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/iommu_group", d->uuid);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		fatal("readlink iommu_group", errno);
	link[n] = 0;
	base = strrchr(link, '/');
	d->group = atoi(base ? base + 1 : link);

	snprintf(path, sizeof(path), "/dev/vfio/%d", d->group);
	int group = open(path, O_RDWR);
	if (group < 0)
		fatal("open group", errno);
	if (ioctl(group, VFIO_GROUP_GET_STATUS, &status) < 0)
		fatal("VFIO_GROUP_GET_STATUS", errno);
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		fatal("group not viable", 0);
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0)
		fatal("VFIO_GROUP_SET_CONTAINER", errno);
	if (d == &devices[0] && ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0)
		fatal("VFIO_SET_IOMMU", errno);
	d->fd = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, d->uuid);
	if (d->fd < 0)
		fatal("VFIO_GROUP_GET_DEVICE_FD", errno);
	d->data_fd = -1;
	return 0;
}

/* ---- the steps -------------------------------------------------------------------------------- */

static int parse_u32(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;
	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 0);
	return (errno || *end || *out > max) ? -1 : 0;
}

static void bad(const char *op, const char *why, int lineno)
{
	jbegin();
	jstr("op", op);
	if (cur != &devices[0])
		jint("dev", cur - devices);
	jstr("error", why);
	jint("line", lineno);
	end_op();
}

static void put_slot(struct device *d, int fd)
{
	if (d->data_fd >= 0)
		close(d->data_fd);
	d->data_fd = fd;
}

static void do_case(const char *name)
{
	int ok = 1, e = 0;
	for (int i = 0; i < ndevices; i++) {
		struct device *d = &devices[i];
		put_slot(d, -1);
		d->image_len = 0;
		d->write_off = 0;
		if (ioctl(d->fd, VFIO_DEVICE_RESET) < 0) {
			ok = 0;
			e = errno;
		} else if (get_state(d) != VFIO_DEVICE_STATE_RUNNING) {
			ok = 0;
		}
	}
	cur = &devices[0];
	jbegin();
	jstr("case", name);
	jbool("ok", ok);
	if (e)
		jstr("errno", errname(e));
	end_op();
}

static void do_set(unsigned long long n)
{
	struct vfio_device_feature_mig_state m = {.device_state = (uint32_t)n, .data_fd = -1};
	int r = feature(cur->fd, VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));
	int e = errno;

	begin_op("SET");
	juint("arg", n);
	jret(r, e);
	if (r == 0 && m.data_fd >= 0) {
		int mode = fcntl(m.data_fd, F_GETFL) & O_ACCMODE;
		put_slot(cur, m.data_fd);
		if (mode == O_RDONLY)
			cur->image_len = 0;
		if (mode == O_WRONLY)
			cur->write_off = 0;
		jstr("data_fd", "new");
		jstr("fd_mode", mode == O_RDONLY ? "r" : mode == O_WRONLY ? "w" : "rw");
	} else {
		jint("data_fd", -1);
	}
	end_op();
}

static void do_get(void)
{
	struct vfio_device_feature_mig_state m = {.data_fd = -1};
	int r = feature(cur->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, &m, sizeof(m));
	int e = errno;

	begin_op("GET");
	jret(r, e);
	if (r == 0)
		jint("state", m.device_state);
	else
		jstr("state", NULL);
	jend();
}

static void do_read(unsigned long long n)
{
	ssize_t r = read(cur->data_fd, iobuf, n);
	int e = errno;

	if (r > 0) {
		size_t room = IMAGE_MAX - cur->image_len;
		size_t k = (size_t)r < room ? (size_t)r : room;
		memcpy(cur->image + cur->image_len, iobuf, k);
		cur->image_len += k;
	}
	begin_op("READ");
	juint("arg", n);
	jret(r, e);
	juint("saved", cur->image_len);
	end_op();
}

static void do_write(unsigned long long n, const char *what, struct device *from)
{
	size_t k = (size_t)n;
	ssize_t r;
	int e;

	if (strcmp(what, "zero") == 0) {
		memset(iobuf, 0, k);
	} else {
		size_t left = from->image_len > cur->write_off ? from->image_len - cur->write_off : 0;
		if (k > left)
			k = left;
		memcpy(iobuf, from->image + cur->write_off, k);
		if (strcmp(what, "corrupt") == 0)
			for (size_t i = cur->write_off; i < 8 && i < cur->write_off + k; i++)
				iobuf[i - cur->write_off] ^= 0xff;
	}
	r = write(cur->data_fd, iobuf, k);
	e = errno;
	if (r > 0)
		cur->write_off += (size_t)r;

	begin_op("WRITE");
	juint("arg", n);
	jstr("what", what);
	if (from != cur)
		jint("from", from - devices);
	juint("len", k);
	jret(r, e);
	end_op();
}

static void do_precopy_info(void)
{
	struct vfio_precopy_info info = {.argsz = sizeof(info), .flags = 0};
	int r = ioctl(cur->data_fd, VFIO_MIG_GET_PRECOPY_INFO, &info);
	int e = errno;

	begin_op("PRECOPY_INFO");
	jret(r, e);
	if (r == 0) {
		juint("initial_bytes", info.initial_bytes);
		juint("dirty_bytes", info.dirty_bytes);
		juint("flags", info.flags);
	}
	end_op();
}

static void do_data_size(void)
{
	struct vfio_device_feature_mig_data_size s = {0};
	int r = feature(cur->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &s, sizeof(s));
	int e = errno;

	begin_op("DATA_SIZE");
	jret(r, e);
	if (r == 0)
		juint("stop_copy_length", s.stop_copy_length);
	end_op();
}

/*
 * The read-backs a user can take after any step (src/testgen/observe.ts), moving no byte: a zero-length
 * read (an O_RDONLY fd) or write (O_WRONLY) on the fd the slot holds — 0 while the driver serves its
 * session, an errno once the session ended (mtty's read and write reach their `disabled` check for a
 * zero length too) — and
 * MIG_DATA_SIZE. "ret" is MIG_DATA_SIZE's; "probe" the zero-length call's, absent with no fd.
 */
static void do_probe(void)
{
	struct vfio_device_feature_mig_data_size s = {0};
	int r = feature(cur->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, &s, sizeof(s));
	int e = errno;

	begin_op("PROBE");
	if (cur->data_fd >= 0) {
		int mode = fcntl(cur->data_fd, F_GETFL) & O_ACCMODE;
		ssize_t p = mode == O_WRONLY ? write(cur->data_fd, iobuf, 0) : read(cur->data_fd, iobuf, 0);
		int pe = errno;

		jstr("fd_mode", mode == O_RDONLY ? "r" : mode == O_WRONLY ? "w" : "rw");
		jint("probe", p);
		if (p < 0)
			jstr("probe_errno", errname(pe));
	} else {
		jint("data_fd", -1);
	}
	jret(r, e);
	if (r == 0)
		juint("stop_copy_length", s.stop_copy_length);
	end_op();
}

static void do_migration_flags(void)
{
	struct vfio_device_feature_migration m = {0};
	int r = feature(cur->fd, VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_MIGRATION, &m, sizeof(m));
	int e = errno;

	begin_op("MIGRATION_FLAGS");
	jret(r, e);
	if (r == 0)
		juint("flags", m.flags);
	end_op();
}

static void do_precopy_info_v2(void)
{
	char none = 0;
	int r = feature(cur->fd, VFIO_DEVICE_FEATURE_SET | PRECOPY_INFO_V2_FEATURE, &none, 0);
	int e = errno;

	begin_op("PRECOPY_INFO_V2");
	jint("feature", PRECOPY_INFO_V2_FEATURE);
	jbool("hdr", PRECOPY_INFO_V2_IN_HEADER);
	jret(r, e);
	end_op();
}

static void do_reset(void)
{
	int r = ioctl(cur->fd, VFIO_DEVICE_RESET);
	int e = errno;

	begin_op("RESET");
	jret(r, e);
	end_op();
}

static void do_close(void)
{
	int r = close(cur->data_fd);
	int e = errno;

	cur->data_fd = -1;
	begin_op("CLOSE");
	jret(r, e);
	end_op();
}

/* one script line; returns 1 for a CASE line, 2 for a step, 0 for a skipped line */
static int run_line(char *text, int lineno)
{
	char *tok[5] = {0};
	int ntok = 0;
	unsigned long long n = 0;
	char *p = text;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!*p || *p == '#')
		return 0;
	if (strncmp(p, "CASE", 4) == 0 && (p[4] == ' ' || p[4] == '\t' || !p[4])) {
		char *name = p + 4;
		while (*name == ' ' || *name == '\t')
			name++;
		do_case(name);
		return 1;
	}
	for (char *s = strtok(p, " \t"); s && ntok < 5; s = strtok(NULL, " \t"))
		tok[ntok++] = s;

	const char *op = tok[0];
#define ARGS(k)                                                           \
	do {                                                              \
		if (ntok != (k) + 1) {                                    \
			bad(op, "wrong number of arguments", lineno);     \
			return 2;                                         \
		}                                                         \
	} while (0)

	if (strcmp(op, "SET") == 0) {
		ARGS(1);
		if (parse_u32(tok[1], UINT32_MAX, &n))
			bad(op, "state is not a u32", lineno);
		else
			do_set(n);
	} else if (strcmp(op, "GET") == 0) {
		ARGS(0);
		do_get();
	} else if (strcmp(op, "READ") == 0) {
		ARGS(1);
		if (parse_u32(tok[1], IO_MAX, &n))
			bad(op, "length is not 0..1048576", lineno);
		else
			do_read(n);
	} else if (strcmp(op, "WRITE") == 0) {
		struct device *from = cur;
		if (ntok != 3 && ntok != 4) {
			bad(op, "wrong number of arguments", lineno);
			return 2;
		}
		if (parse_u32(tok[1], IO_MAX, &n)) {
			bad(op, "length is not 0..1048576", lineno);
			return 2;
		}
		if (strcmp(tok[2], "saved") && strcmp(tok[2], "zero") && strcmp(tok[2], "corrupt")) {
			bad(op, "what is not saved, zero or corrupt", lineno);
			return 2;
		}
		if (ntok == 4) {
			unsigned long long i;
			if (parse_u32(tok[3], (unsigned long long)ndevices - 1, &i)) {
				bad(op, "no such device", lineno);
				return 2;
			}
			from = &devices[i];
		}
		do_write(n, tok[2], from);
	} else if (strcmp(op, "DEVICE") == 0) {
		ARGS(1);
		if (parse_u32(tok[1], (unsigned long long)ndevices - 1, &n)) {
			bad(op, "no such device", lineno);
		} else {
			cur = &devices[n];
			begin_op("DEVICE");
			juint("arg", n);
			jret(0, 0);
			end_op();
		}
	} else if (strcmp(op, "PRECOPY_INFO") == 0) {
		ARGS(0);
		do_precopy_info();
	} else if (strcmp(op, "DATA_SIZE") == 0) {
		ARGS(0);
		do_data_size();
	} else if (strcmp(op, "PROBE") == 0) {
		ARGS(0);
		do_probe();
	} else if (strcmp(op, "MIGRATION_FLAGS") == 0) {
		ARGS(0);
		do_migration_flags();
	} else if (strcmp(op, "PRECOPY_INFO_V2") == 0) {
		ARGS(0);
		do_precopy_info_v2();
	} else if (strcmp(op, "RESET") == 0) {
		ARGS(0);
		do_reset();
	} else if (strcmp(op, "CLOSE") == 0) {
		ARGS(0);
		do_close();
	} else {
		bad("?", "unknown command", lineno);
	}
	return 2;
}

static void run_script(const char *path)
{
	static char text[8192];
	int cases = 0, steps = 0, lineno = 0;
	FILE *f = fopen(path, "r");
	char taint[32] = "";
	FILE *t;

	if (!f)
		fatal("open script", errno);
	while (fgets(text, sizeof(text), f)) {
		size_t n = strlen(text);
		lineno++;
		while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
			text[--n] = 0;
		switch (run_line(text, lineno)) {
		case 1:
			cases++;
			break;
		case 2:
			steps++;
			break;
		}
	}
	fclose(f);
	t = fopen("/proc/sys/kernel/tainted", "r");
	if (t) {
		if (!fgets(taint, sizeof(taint), t))
			taint[0] = 0;
		fclose(t);
	}
	jbegin();
	jbool("end", 1);
	jint("cases", cases);
	jint("steps", steps);
	jint("tainted", atoll(taint));
	jend();
}

int main(int argc, char **argv)
{
	struct utsname u;
	struct timespec ts;
	int i = 1;

	for (; i + 1 < argc && strcmp(argv[i], "-d") == 0; i += 2) {
		if (ndevices == MAX_DEVICES)
			fatal("too many devices", 0);
		devices[ndevices++].uuid = argv[i + 1];
	}
	if (ndevices == 0 || i >= argc)
		fatal("usage: vfio-steps -d <uuid> [-d <uuid>] <script>...", 0);

	container = open("/dev/vfio/vfio", O_RDWR);
	if (container < 0)
		fatal("open /dev/vfio/vfio", errno);
	if (ioctl(container, VFIO_GET_API_VERSION) != VFIO_API_VERSION)
		fatal("VFIO_GET_API_VERSION", errno);
	if (ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1)
		fatal("no VFIO_TYPE1v2_IOMMU", errno);
	for (int d = 0; d < ndevices; d++)
		open_device(&devices[d]);
	cur = &devices[0];

	uname(&u);
	clock_gettime(CLOCK_BOOTTIME, &ts);
	jbegin();
	jbool("ready", 1);
	jint("devices", ndevices);
	jkey("uuids");
	jraw("[");
	for (int d = 0; d < ndevices; d++) {
		if (d)
			jraw(",");
		jraw("\"");
		jraw(devices[d].uuid);
		jraw("\"");
	}
	jraw("]");
	jstr("kernel", u.release);
	jint("uptime_ms", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	jend();

	for (; i < argc; i++)
		run_script(argv[i]);
	drain();
	return 0;
}
