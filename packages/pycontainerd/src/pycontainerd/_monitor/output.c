/*
 * pycontainerd-monitor, output: buffers, the files under DIR (atomic writes for the pid file and
 * exit records, the events file, each process's log of timestamped records with rotation) and the stdio of
 * processes (reading their output into the log and attached clients, writing their stdin, OOM
 * events).
 *
 * C for the reason monitor.c gives: one monitor runs per container for its whole life and must
 * stay smaller than containerd-shim-runc-v2; buffers give their memory back when emptied.
 */
#include "monitor.h"

/* ---------------------------------------------------------------------------------------------- */
/* Buffers: emptied buffers give their memory back, so that an idle monitor stays small. */

size_t buf_size(const struct buf *b)
{
	return b->len - b->off;
}

void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void buf_append(struct buf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		if (b->off) {
			memmove(b->data, b->data + b->off, b->len - b->off);
			b->len -= b->off;
			b->off = 0;
		}
		if (b->len + len > b->cap) {
			size_t cap = b->cap ? b->cap : 256;
			while (cap < b->len + len)
				cap *= 2;
			char *grown = realloc(b->data, cap);
			if (!grown)
				out_of_memory();
			b->data = grown;
			b->cap = cap;
		}
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		buf_free(b);
}

__attribute__((format(printf, 2, 3))) void buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof small) {
		buf_append(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big)
		out_of_memory();
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_append(b, big, (size_t)n);
	free(big);
}

static void buf_json_string(struct buf *b, const char *s)
{
	buf_append(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			buf_append(b, esc, 2);
		} else if (c < 0x20) {
			buf_printf(b, "\\u%04x", c);
		} else {
			buf_append(b, s, 1);
		}
	}
	buf_append(b, "\"", 1);
}

void buf_frame(struct buf *b, int kind, const void *data, size_t len)
{
	unsigned char h[HEADER_SIZE] = {(unsigned char)kind, 0, 0, 0, (unsigned char)(len >> 24),
					(unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len};
	buf_append(b, h, sizeof h);
	buf_append(b, data, len);
}

void rfc3339(char *out, size_t size, const struct timespec *ts)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%09ldZ", ts->tv_nsec);
}

/* ---------------------------------------------------------------------------------------------- */
/* Files under DIR */

void cleanup_files(void)
{
	char path[PATH_MAX];
	if (!g_dir)
		return;
	snprintf(path, sizeof path, "%s/monitor.sock", g_dir);
	unlink(path);
	for (struct proc *p = g_procs; p; p = p->next) {
		if (p->console >= 0) {
			snprintf(path, sizeof path, p == g_init ? "%s/console.sock" : "%s/%s.console.sock", g_dir,
				 p->name);
			unlink(path);
		}
	}
	snprintf(path, sizeof path, "%s/monitor.pid", g_dir);
	unlink(path);
}

/* Write DIR/name atomically: a temporary file renamed over it. */
int write_atomic(const char *name, const char *data, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	path_of(path, sizeof path, "%s/%s", g_dir, name);
	path_of(tmp, sizeof tmp, "%s/.%s.tmp", g_dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write_all(fd, data, len) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}

void append_event(struct buf *line)
{
	if (!g_events)
		return;
	buf_append(line, "\n", 1);
	int fd = open(g_events, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0) {
		/* One write with O_APPEND: lines from several monitors never interleave. */
		(void)write_all(fd, line->data + line->off, buf_size(line));
		close(fd);
	}
}

void event_header(struct buf *b, const char *topic)
{
	struct timespec now;
	char when[64];
	clock_gettime(CLOCK_REALTIME, &now);
	rfc3339(when, sizeof when, &now);
	buf_printf(b, "{\"topic\": \"%s\", \"timestamp\": \"%s\", \"namespace\": ", topic, when);
	buf_json_string(b, g_ns);
	buf_printf(b, ", \"id\": ");
	buf_json_string(b, g_id);
}

unsigned long long read_oom_kills(void)
{
	char path[PATH_MAX], text[1024];
	if (!g_memcg)
		return 0;
	path_of(path, sizeof path, "%s/memory.oom_control", g_memcg);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	char *line = strstr(text, "oom_kill ");
	return line ? strtoull(line + strlen("oom_kill "), NULL, 10) : 0;
}

/* Where the process's log goes and how it is rotated: the init's as the command line says, an
 * exec'd process's in DIR/PROC.log, capped at --log-max with one rotated file. */
int open_log(struct proc *p, char *err, size_t errlen)
{
	char path[PATH_MAX];
	if (p == g_init && g_init_log) {
		path_of(path, sizeof path, "%s", g_init_log);
		p->log_max = g_init_log_max;
		p->log_files = g_init_log_files;
	} else {
		path_of(path, sizeof path, "%s/%s.log", g_dir, p->name);
		p->log_max = g_log_max;
		p->log_files = 2;
	}
	free(p->log_path);
	p->log_path = strdup(path);
	if (!p->log_path)
		out_of_memory();
	p->log = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (p->log < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	p->log_size = fstat(p->log, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size : 0;
	return 0;
}

/* Docker's json-file rotation: PATH.(N-2) becomes PATH.(N-1) (the oldest goes), ..., PATH becomes
 * PATH.1, and PATH starts anew; with one file, PATH is replaced by an empty one. Renames, never a
 * truncation in place: a reader that has the file open reads it to its end. */
static void rotate_log(struct proc *p)
{
	char from[PATH_MAX], to[PATH_MAX];
	close_fd(&p->log);
	if (p->log_files <= 1) {
		unlink(p->log_path);
	} else {
		for (int i = p->log_files - 1; i >= 1; i--) {
			if (i == 1)
				path_of(from, sizeof from, "%s", p->log_path);
			else
				path_of(from, sizeof from, "%s.%d", p->log_path, i - 1);
			path_of(to, sizeof to, "%s.%d", p->log_path, i);
			if (rename(from, to) < 0 && errno != ENOENT)
				break;
		}
	}
	p->log = open(p->log_path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	p->log_size = 0;
}

#define LOG_BATCH 256 /* records per writev: 3 vectors each, within IOV_MAX */

struct log_batch {
	struct iovec iov[LOG_BATCH * 3];
	unsigned char heads[LOG_BATCH][HEADER_SIZE], tails[LOG_BATCH][TRAILER_SIZE];
	int n;
	size_t bytes;
};

static void put_be(unsigned char *out, uint64_t value, int size)
{
	for (int i = size - 1; i >= 0; i--, value >>= 8)
		out[i] = (unsigned char)value;
}

/* Write the batch's records with one writev (O_APPEND: they land whole and together); false if the
 * log had to be given up. A short write (a full disk) is undone: the file stays whole records. */
static bool flush_batch(struct proc *p, struct log_batch *b)
{
	if (b->n == 0)
		return true;
	ssize_t n;
	do
		n = writev(p->log, b->iov, b->n * 3);
	while (n < 0 && errno == EINTR);
	size_t bytes = b->bytes;
	b->n = 0;
	b->bytes = 0;
	if (n < 0)
		return false;
	if ((size_t)n < bytes) {
		if (ftruncate(p->log, p->log_size) < 0)
			close_fd(&p->log);
		return false;
	}
	p->log_size += (off_t)bytes;
	return true;
}

/* Append output to the process's log: one record per line, each stamped with the time it was read;
 * the file is rotated between records, never inside one. */
static void log_output(struct proc *p, int kind, const char *data, size_t len)
{
	static struct log_batch batch;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t stamp = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	batch.n = 0;
	batch.bytes = 0;
	while (len > 0 && p->log >= 0) {
		const char *newline = memchr(data, '\n', len);
		size_t take = newline ? (size_t)(newline - data) + 1 : len;
		size_t size = HEADER_SIZE + take + TRAILER_SIZE;
		off_t pending = p->log_size + (off_t)batch.bytes;
		if (p->log_max > 0 && pending > 0 && pending + (off_t)size > p->log_max) {
			if (!flush_batch(p, &batch))
				return;
			rotate_log(p);
			if (p->log < 0)
				return; /* the output still reaches attached clients */
		}
		int i = batch.n++;
		batch.heads[i][0] = (unsigned char)kind;
		memset(batch.heads[i] + 1, 0, 3);
		put_be(batch.heads[i] + 4, take, 4);
		put_be(batch.tails[i], stamp, 8);
		put_be(batch.tails[i] + 8, take, 4);
		batch.iov[i * 3] = (struct iovec){batch.heads[i], HEADER_SIZE};
		batch.iov[i * 3 + 1] = (struct iovec){(void *)data, take};
		batch.iov[i * 3 + 2] = (struct iovec){batch.tails[i], TRAILER_SIZE};
		batch.bytes += size;
		data += take;
		len -= take;
		if (batch.n == LOG_BATCH && !flush_batch(p, &batch))
			return;
	}
	if (p->log >= 0)
		flush_batch(p, &batch);
}

/* ---------------------------------------------------------------------------------------------- */
/* Output and input of processes */

bool read_output(struct proc *p, int stream)
{
	ssize_t n = read(p->out[stream], g_io, sizeof g_io);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	if (n <= 0) { /* EOF of a pipe; EIO once a terminal's last slave closed */
		close_output(p, stream);
		maybe_finish(p);
		return false;
	}
	int kind = stream ? FRAME_STDERR : FRAME_STDOUT;
	p->last_read_ms = now_ms();
	log_output(p, kind, g_io, (size_t)n);
	for (struct client *c = g_clients; c; c = c->next) {
		if (c->attached != p || c->dead || c->mode == C_WAIT)
			continue;
		if (c->mode == C_OUTPUT)
			buf_frame(&c->out, kind, g_io, (size_t)n);
		else if (buf_size(&c->out) == 0) /* C_WATCH: one empty frame says "more in the log" */
			buf_frame(&c->out, kind, "", 0);
	}
	return true;
}

void write_stdin(struct proc *p)
{
	while (buf_size(&p->stdin_pending) > 0) {
		ssize_t n = write(p->in, p->stdin_pending.data + p->stdin_pending.off, buf_size(&p->stdin_pending));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				close_stdin_now(p); /* the reader is gone */
			return;
		}
		buf_consume(&p->stdin_pending, (size_t)n);
	}
	if (p->stdin_closing)
		close_stdin_now(p);
}

void read_oom_event(void)
{
	uint64_t count;
	if (read(g_oom_efd, &count, sizeof count) < 0)
		return;
	char path[PATH_MAX];
	path_of(path, sizeof path, "%s/memory.oom_control", g_memcg);
	if (access(path, F_OK) < 0) { /* the cgroup was removed, which signals the eventfd too */
		close_fd(&g_oom_efd);
		close_fd(&g_oom_ctl);
		return;
	}
	struct buf event = {0};
	event_header(&event, "/tasks/oom");
	buf_printf(&event, "}");
	append_event(&event);
	buf_free(&event);
}
