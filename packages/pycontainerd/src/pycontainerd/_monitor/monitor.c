/*
 * pycontainerd-monitor: the monitor of one container (containerd's shim, podman's conmon).
 *
 * Why C: one of these runs per running container for the container's whole life, and its memory
 * must stay below containerd-shim-runc-v2's (1.5-4 MB); an idle Python interpreter alone costs
 * 2-3 MB. Everything that can live in Python does (pycontainerd._monitor builds the runtime's
 * command line, reads logs and exit records, speaks the control protocol); this program only
 * holds the container's stdio, reaps its processes and writes what they leave behind.
 *
 * The command line, the files it writes and the control protocol are documented in
 * pycontainerd/_monitor/__init__.py; the constants below must match _protocol.py.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Frame kinds: the 8-byte header is kind, three zero bytes, then the payload length (uint32 BE). */
enum { FRAME_STDIN = 0, FRAME_STDOUT = 1, FRAME_STDERR = 2, FRAME_EXIT = 3, FRAME_REPLY = 4, FRAME_REQUEST = 5 };
#define HEADER_SIZE 8
#define HIGH_WATER (1u << 20)       /* pending bytes past which a reader or writer is held back */
#define MAX_REQUEST (1u << 20)      /* largest frame a client may send */
#define DRAIN_GRACE_MS 2000         /* output kept open by a leftover process after the exit */
#define LINGER_MS 10000             /* how long a stalled client may hold up the monitor's exit */
#define PROC_NAME_MAX 64
#define MAX_PENDING_EXITS 64
#define ERR_MAX (PATH_MAX + 512)

struct buf {
	char *data;
	size_t off, len, cap; /* the content is data[off, len) */
};

struct client;

struct proc {
	struct proc *next;
	char name[PROC_NAME_MAX + 1];
	pid_t pid;     /* 0 until the runtime wrote the pid file */
	pid_t runtime; /* the runtime (pyrunc create / exec) while it runs */
	bool tty, with_stdin, reaped, done, stdin_closing, dropped, oom_killed;
	int status;
	struct timespec exited_at;
	int64_t reaped_ms, last_read_ms;
	int out[2];  /* stdout, stderr read ends; with a terminal out[0] is the master */
	int in;      /* stdin write end (the master with a terminal), -1 when closed */
	int master;  /* the pty master, -1 without a terminal or once it reported EIO */
	int console; /* listening console socket until the master arrives */
	struct buf stdin_pending;
	int log;
	off_t log_size;
	unsigned long long oom_base;
	struct client *requester; /* exec: the connection waiting for the reply */
};

struct client {
	struct client *next;
	int fd;
	struct proc *attached;
	bool stdin_ok, hold, closing, dead;
	int64_t progress_ms;
	struct buf in, reply, out;
};

struct pending_exit {
	pid_t pid;
	int status;
	struct timespec at;
};

static const char *g_dir, *g_id, *g_ns, *g_events, *g_memcg;
static off_t g_log_max = 16 << 20;
static int g_ready = -1, g_null = -1, g_sigfd = -1, g_listen = -1, g_oom_efd = -1, g_oom_ctl = -1;
static struct proc *g_procs, *g_init;
static struct client *g_clients;
static struct pending_exit g_pending[MAX_PENDING_EXITS];
static int g_npending;
static char g_io[65536];

/* ---------------------------------------------------------------------------------------------- */
/* Small helpers */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cleanup_files(void);

/* Before the ready line: report on the ready fd, remove what we made, exit 1. */
__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...)
{
	char msg[ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	cleanup_files(); /* first: once the caller reads the error, nothing of ours is left */
	if (g_ready >= 0)
		dprintf(g_ready, "error %s\n", msg);
	_exit(1);
}

__attribute__((noreturn)) static void out_of_memory(void)
{
	/* Nothing sensible is left to do: the exit records cannot be written either. */
	fail("out of memory");
}

__attribute__((format(printf, 3, 4))) static void path_of(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		fail("path too long under %s", g_dir);
}

static bool valid_proc_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > PROC_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static void set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static ssize_t write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* ---------------------------------------------------------------------------------------------- */
/* Buffers: emptied buffers give their memory back, so that an idle monitor stays small. */

static size_t buf_size(const struct buf *b)
{
	return b->len - b->off;
}

static void buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

static void buf_append(struct buf *b, const void *data, size_t len)
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

static void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		buf_free(b);
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...)
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

static void buf_frame(struct buf *b, int kind, const void *data, size_t len)
{
	unsigned char h[HEADER_SIZE] = {(unsigned char)kind, 0, 0, 0, (unsigned char)(len >> 24),
					(unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len};
	buf_append(b, h, sizeof h);
	buf_append(b, data, len);
}

static void rfc3339(char *out, size_t size, const struct timespec *ts)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%09ldZ", ts->tv_nsec);
}

/* ---------------------------------------------------------------------------------------------- */
/* Files under DIR */

static void cleanup_files(void)
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
static int write_atomic(const char *name, const char *data, size_t len)
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

static void append_event(struct buf *line)
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

static void event_header(struct buf *b, const char *topic)
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

static unsigned long long read_oom_kills(void)
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

static int open_log(struct proc *p, char *err, size_t errlen)
{
	char path[PATH_MAX];
	path_of(path, sizeof path, "%s/%s.log", g_dir, p->name);
	p->log = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (p->log < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	p->log_size = fstat(p->log, &st) == 0 ? st.st_size : 0;
	return 0;
}

static void rotate_log(struct proc *p)
{
	char path[PATH_MAX], old[PATH_MAX];
	path_of(path, sizeof path, "%s/%s.log", g_dir, p->name);
	path_of(old, sizeof old, "%s/%s.log.1", g_dir, p->name);
	close_fd(&p->log);
	rename(path, old);
	p->log = open(path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	p->log_size = 0;
}

/* Append output to the process's log as frames, each in one write; a file is filled up to the
 * cap and then rotated, so data that does not fit is split into two frames, never a frame into
 * two files. */
static void log_output(struct proc *p, int kind, const char *data, size_t len)
{
	while (len > 0 && p->log >= 0) {
		if (p->log_size + HEADER_SIZE >= g_log_max) {
			rotate_log(p);
			if (p->log < 0)
				return; /* the output still reaches attached clients */
		}
		size_t room = (size_t)(g_log_max - p->log_size - HEADER_SIZE);
		size_t take = len < room ? len : room;
		unsigned char h[HEADER_SIZE] = {(unsigned char)kind,	       0, 0, 0, (unsigned char)(take >> 24),
						(unsigned char)(take >> 16), (unsigned char)(take >> 8), (unsigned char)take};
		struct iovec iov[2] = {{h, HEADER_SIZE}, {(void *)data, take}};
		ssize_t n;
		do /* one writev of a regular file with O_APPEND: the frame lands whole */
			n = writev(p->log, iov, 2);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return;
		if ((size_t)n < HEADER_SIZE + take) { /* a full disk: keep the file made of whole frames */
			if (ftruncate(p->log, p->log_size) < 0)
				close_fd(&p->log);
			return;
		}
		p->log_size += HEADER_SIZE + (off_t)take;
		data += take;
		len -= take;
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* Processes */

static struct proc *find_proc(const char *name)
{
	for (struct proc *p = g_procs; p; p = p->next)
		if (!p->dropped && strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static struct proc *new_proc(const char *name, bool tty, bool with_stdin)
{
	struct proc *p = calloc(1, sizeof *p);
	if (!p)
		out_of_memory();
	snprintf(p->name, sizeof p->name, "%s", name);
	p->tty = tty;
	p->with_stdin = with_stdin;
	p->out[0] = p->out[1] = p->in = p->master = p->console = p->log = -1;
	struct proc **tail = &g_procs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = p;
	return p;
}

static void console_path(const struct proc *p, char *out, size_t size)
{
	if (p == g_init)
		path_of(out, size, "%s/console.sock", g_dir);
	else
		path_of(out, size, "%s/%s.console.sock", g_dir, p->name);
}

static void close_console(struct proc *p)
{
	if (p->console < 0)
		return;
	char path[PATH_MAX];
	console_path(p, path, sizeof path);
	close_fd(&p->console);
	unlink(path);
}

static void close_output(struct proc *p, int stream)
{
	if (p->tty && stream == 0) {
		close_fd(&p->master);
		p->out[0] = p->in = -1;
		buf_free(&p->stdin_pending);
	} else {
		close_fd(&p->out[stream]);
	}
}

static void close_stdin_now(struct proc *p)
{
	buf_free(&p->stdin_pending);
	if (p->tty)
		p->in = -1; /* a terminal cannot be half-closed: stop passing input on */
	else
		close_fd(&p->in);
}

static void release_proc(struct proc *p)
{
	close_console(p);
	if (!p->tty) {
		close_fd(&p->out[0]);
		close_fd(&p->in);
	}
	close_fd(&p->out[1]);
	close_fd(&p->master);
	p->out[0] = p->in = -1;
	buf_free(&p->stdin_pending);
	close_fd(&p->log);
}

/* Forget a process whose exec failed (freed by sweep_procs, after the poll round): its name can be
 * used again. */
static void drop_proc(struct proc *p)
{
	release_proc(p);
	p->dropped = true;
	p->done = true;
	for (struct client *c = g_clients; c; c = c->next)
		if (c->attached == p)
			c->attached = NULL;
}

static void sweep_procs(void)
{
	for (struct proc **q = &g_procs; *q;) {
		struct proc *p = *q;
		if (p->dropped) {
			*q = p->next;
			free(p);
		} else {
			q = &p->next;
		}
	}
}

static void exit_json(const struct proc *p, struct buf *b)
{
	char when[64];
	rfc3339(when, sizeof when, &p->exited_at);
	buf_printf(b, "{\"pid\": %d, \"status\": %d, \"exited_at\": \"%s\", \"oom_killed\": %s}", (int)p->pid,
		   p->status, when, p->oom_killed ? "true" : "false");
}

static void client_queue_exit(struct client *c, const struct proc *p);

/* The process has exited and its output is drained: record the exit, tell whoever listens. */
static void finish_proc(struct proc *p)
{
	p->done = true;
	release_proc(p);

	struct buf record = {0};
	exit_json(p, &record);
	char name[PROC_NAME_MAX + 16];
	snprintf(name, sizeof name, "%s.exit", p->name);
	(void)write_atomic(name, record.data + record.off, buf_size(&record));
	buf_free(&record);

	char when[64];
	rfc3339(when, sizeof when, &p->exited_at);
	struct buf event = {0};
	event_header(&event, "/tasks/exit");
	buf_printf(&event, ", \"proc\": \"%s\", \"pid\": %d, \"status\": %d, \"exited_at\": \"%s\"}", p->name,
		   (int)p->pid, p->status, when);
	append_event(&event);
	buf_free(&event);

	for (struct client *c = g_clients; c; c = c->next)
		if (c->attached == p && !c->dead)
			client_queue_exit(c, p);
}

static void maybe_finish(struct proc *p)
{
	if (!p->done && p->reaped && p->runtime == 0 && p->out[0] < 0 && p->out[1] < 0)
		finish_proc(p);
}

static void proc_reaped(struct proc *p, int status, const struct timespec *at)
{
	p->reaped = true;
	p->status = status;
	p->exited_at = *at;
	p->reaped_ms = now_ms();
	/* Read now: the cgroup goes away when the container is deleted. */
	p->oom_killed = g_memcg && (p == g_init ? read_oom_kills() > 0 : read_oom_kills() > p->oom_base);
	maybe_finish(p);
}

static bool proc_paused(const struct proc *p)
{
	for (const struct client *c = g_clients; c; c = c->next)
		if (c->attached == p && !c->dead && buf_size(&c->out) > HIGH_WATER)
			return true;
	return false;
}

/* ---------------------------------------------------------------------------------------------- */
/* Running the runtime */

static void reset_child_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Ignored dispositions survive execve: the container must get the default ones. */
	signal(SIGHUP, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
}

/* Fork and exec argv with fd0-fd2 as its stdio; -1 with the reason in err if it could not run. */
static pid_t spawn(char *const argv[], int fd0, int fd1, int fd2, char *err, size_t errlen)
{
	int report[2];
	if (pipe2(report, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(report[0]);
		close(report[1]);
		return -1;
	}
	if (pid == 0) {
		reset_child_signals();
		if (dup2(fd0, 0) < 0 || dup2(fd1, 1) < 0 || dup2(fd2, 2) < 0) {
			int e = errno;
			(void)write_all(report[1], &e, sizeof e);
			_exit(127);
		}
		execvp(argv[0], argv);
		int e = errno;
		(void)write_all(report[1], &e, sizeof e);
		_exit(127);
	}
	close(report[1]);
	int e;
	ssize_t n;
	do
		n = read(report[0], &e, sizeof e);
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == (ssize_t)sizeof e) {
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "exec %s: %s", argv[0], strerror(e));
		return -1;
	}
	return pid;
}

/* Prepare the process's stdio and run its runtime; -1 with the reason in err on failure. */
static int start_runtime(struct proc *p, char *const argv[], char *err, size_t errlen)
{
	int child[3] = {g_null, g_null, g_null};
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1};
	/* stderr is a pipe even with a terminal: the runtime says there why it failed (the
	 * container's process gets the terminal as its stdio instead). */
	if (pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	child[2] = errp[1];
	p->out[1] = errp[0];
	set_nonblock(p->out[1]);
	if (p->tty) {
		char path[PATH_MAX];
		console_path(p, path, sizeof path);
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		if (strlen(path) >= sizeof addr.sun_path) {
			snprintf(err, errlen, "console socket path %s is longer than %zu bytes", path,
				 sizeof addr.sun_path - 1);
			close_fd(&errp[1]);
			return -1;
		}
		strcpy(addr.sun_path, path);
		p->console = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (p->console < 0 || bind(p->console, (struct sockaddr *)&addr, sizeof addr) < 0 ||
		    listen(p->console, 1) < 0) {
			snprintf(err, errlen, "listen on %s: %s", path, strerror(errno));
			close_fd(&p->console);
			close_fd(&errp[1]);
			return -1;
		}
	} else {
		if (pipe2(outp, O_CLOEXEC) < 0 || (p->with_stdin && pipe2(inp, O_CLOEXEC) < 0)) {
			snprintf(err, errlen, "pipe: %s", strerror(errno));
			close_fd(&outp[0]), close_fd(&outp[1]), close_fd(&errp[1]);
			return -1;
		}
		child[1] = outp[1];
		if (p->with_stdin)
			child[0] = inp[0];
		p->out[0] = outp[0];
		p->in = inp[1];
		set_nonblock(p->out[0]);
		if (p->in >= 0)
			set_nonblock(p->in);
	}
	p->oom_base = read_oom_kills();
	pid_t pid = open_log(p, err, errlen) < 0 ? -1 : spawn(argv, child[0], child[1], child[2], err, errlen);
	close_fd(&outp[1]);
	close_fd(&errp[1]);
	close_fd(&inp[0]);
	if (pid < 0)
		return -1;
	p->runtime = pid;
	return 0;
}

/* Take the pty master the container's init sends on the console socket (SCM_RIGHTS). */
static void receive_console(struct proc *p)
{
	int conn = accept4(p->console, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return;
	struct timeval limit = {.tv_sec = 5};
	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
	char name[256];
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = name, .iov_len = sizeof name};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control};
	ssize_t n;
	do
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	close(conn);
	struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return; /* not a terminal: keep listening; the runtime's end decides */
	int master;
	memcpy(&master, CMSG_DATA(cm), sizeof master);
	set_nonblock(master);
	close_console(p);
	p->master = p->out[0] = master;
	if (p->with_stdin)
		p->in = master;
}

static int read_pid_file(const struct proc *p, char *err, size_t errlen)
{
	char path[PATH_MAX], text[32];
	if (p == g_init)
		path_of(path, sizeof path, "%s/init.pid", g_dir);
	else
		path_of(path, sizeof path, "%s/%s.pid", g_dir, p->name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "read %s: %s", path, strerror(errno));
		return -1;
	}
	ssize_t n = read(fd, text, sizeof text - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	char *end;
	long pid = strtol(text, &end, 10);
	if (n <= 0 || pid <= 0 || pid > INT_MAX || (*end && *end != '\n')) {
		snprintf(err, errlen, "%s does not hold a pid", path);
		return -1;
	}
	return (int)pid;
}

/* Ask the memory cgroup for an eventfd notification on OOM (cgroup v1); -1 with the reason in err. */
static int setup_oom_notification(char *err, size_t errlen)
{
	char path[PATH_MAX], line[64];
	path_of(path, sizeof path, "%s/memory.oom_control", g_memcg);
	g_oom_ctl = open(path, O_RDONLY | O_CLOEXEC);
	if (g_oom_ctl < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	g_oom_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (g_oom_efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -1;
	}
	path_of(path, sizeof path, "%s/cgroup.event_control", g_memcg);
	int ctl = open(path, O_WRONLY | O_CLOEXEC);
	int n = snprintf(line, sizeof line, "%d %d", g_oom_efd, g_oom_ctl);
	if (ctl < 0 || write_all(ctl, line, (size_t)n) < 0) {
		snprintf(err, errlen, "register for OOM notifications in %s: %s", path, strerror(errno));
		if (ctl >= 0)
			close(ctl);
		return -1;
	}
	close(ctl);
	return 0;
}

static void client_reply(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void take_pending_exit(struct proc *p)
{
	for (int i = 0; i < g_npending; i++) {
		if (g_pending[i].pid == p->pid) {
			struct pending_exit e = g_pending[i];
			g_pending[i] = g_pending[--g_npending];
			proc_reaped(p, e.status, &e.at);
			return;
		}
	}
}

static bool read_output(struct proc *p, int stream);

/* The last line the failed runtime wrote to stderr (it goes to the process's log), if any. */
static void runtime_error_line(struct proc *p, char *out, size_t size)
{
	out[0] = '\0';
	while (p->out[1] >= 0 && read_output(p, 1))
		;
	char path[PATH_MAX];
	path_of(path, sizeof path, "%s/%s.log", g_dir, p->name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, g_io, sizeof g_io); /* a runtime says little before failing */
	close(fd);
	const char *last = NULL;
	size_t last_len = 0;
	for (ssize_t at = 0; n > 0 && at + HEADER_SIZE <= n;) {
		const unsigned char *h = (const unsigned char *)g_io + at;
		size_t len = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
		if (at + HEADER_SIZE + (ssize_t)len > n)
			break;
		if (h[0] == FRAME_STDERR) {
			last = g_io + at + HEADER_SIZE;
			last_len = len;
		}
		at += HEADER_SIZE + (ssize_t)len;
	}
	while (last_len > 0 && (last[last_len - 1] == '\n' || last[last_len - 1] == '\r' || last[last_len - 1] == ' '))
		last_len--;
	const char *start = last_len ? memrchr(last, '\n', last_len) : NULL;
	if (start) {
		last_len -= (size_t)(start + 1 - last);
		last = start + 1;
	}
	if (last_len)
		snprintf(out, size, ": %.*s", (int)(last_len < 400 ? last_len : 400), last);
}

/* The runtime (pyrunc create or exec) has exited with status. */
static void runtime_done(struct proc *p, int status)
{
	char err[ERR_MAX] = "";
	p->runtime = 0;
	if (status != 0) {
		char line[512];
		runtime_error_line(p, line, sizeof line);
		snprintf(err, sizeof err, "%s exited with status %d%s", p == g_init ? "create" : "exec", status, line);
	} else {
		if (p->tty && p->master < 0)
			receive_console(p);
		if (p->tty && p->master < 0) {
			char path[PATH_MAX];
			console_path(p, path, sizeof path);
			snprintf(err, sizeof err, "the container did not send its terminal on %s", path);
		} else {
			int pid = read_pid_file(p, err, sizeof err);
			if (pid > 0)
				p->pid = pid;
		}
	}
	if (err[0]) {
		if (p == g_init)
			fail("%s", err);
		if (p->requester) {
			p->requester->hold = false;
			client_reply(p->requester, "error %s", err);
			if (p->requester->attached == p)
				p->requester->closing = true;
		}
		char path[PATH_MAX]; /* the name can be used again: start its log afresh */
		path_of(path, sizeof path, "%s/%s.log", g_dir, p->name);
		drop_proc(p);
		unlink(path);
		return;
	}
	if (p == g_init) {
		/* Failing here would leave a container nobody watches: take its init down with us. */
		if (g_memcg && setup_oom_notification(err, sizeof err) < 0) {
			kill(p->pid, SIGKILL);
			fail("%s", err);
		}
		dprintf(g_ready, "ok %d\n", (int)p->pid);
		close_fd(&g_ready);
	} else if (p->requester) {
		p->requester->hold = false;
		client_reply(p->requester, "ok %d", (int)p->pid);
	}
	p->requester = NULL;
	take_pending_exit(p);
	maybe_finish(p);
}

static int exit_status(int wstatus)
{
	return WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : WEXITSTATUS(wstatus);
}

static void reap_children(void)
{
	for (;;) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, WNOHANG);
		if (pid <= 0)
			break;
		struct timespec at;
		clock_gettime(CLOCK_REALTIME, &at);
		int status = exit_status(wstatus);
		struct proc *p;
		for (p = g_procs; p; p = p->next)
			if (p->runtime == pid || (p->pid == pid && !p->reaped))
				break;
		if (p && p->runtime == pid) {
			runtime_done(p, status);
		} else if (p) {
			proc_reaped(p, status, &at);
		} else {
			/* Not known yet: a process may exit before its runtime wrote the pid file. */
			if (g_npending == MAX_PENDING_EXITS)
				memmove(g_pending, g_pending + 1, sizeof g_pending[0] * --g_npending);
			g_pending[g_npending++] = (struct pending_exit){pid, status, at};
		}
	}
	bool runtime_running = false;
	for (struct proc *p = g_procs; p; p = p->next)
		runtime_running |= p->runtime != 0;
	if (!runtime_running)
		g_npending = 0; /* orphans reparented to us, never a process we track */
}

/* ---------------------------------------------------------------------------------------------- */
/* Clients of the control socket */

static void client_reply(struct client *c, const char *fmt, ...)
{
	char small[ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof small)
		n = sizeof small - 1;
	buf_frame(&c->reply, FRAME_REPLY, small, (size_t)n);
}

static void client_queue_exit(struct client *c, const struct proc *p)
{
	struct buf record = {0};
	exit_json(p, &record);
	buf_frame(&c->out, FRAME_EXIT, record.data + record.off, buf_size(&record));
	buf_free(&record);
	c->closing = true;
}

static void reply_status(struct client *c)
{
	struct buf b = {0};
	buf_printf(&b, "ok {");
	bool first = true;
	for (struct proc *p = g_procs; p; p = p->next) {
		if (p->pid == 0 || p->dropped)
			continue;
		buf_printf(&b, "%s\"%s\": {\"pid\": %d, \"exit\": ", first ? "" : ", ", p->name, (int)p->pid);
		if (p->done)
			exit_json(p, &b);
		else
			buf_printf(&b, "null");
		buf_printf(&b, "}");
		first = false;
	}
	buf_printf(&b, "}");
	buf_frame(&c->reply, FRAME_REPLY, b.data + b.off, buf_size(&b));
	buf_free(&b);
}

static bool parse_flag(const char *s, bool *out)
{
	if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0)
		return false;
	*out = s[0] == '1';
	return true;
}

static void request_exec(struct client *c, char **f, int n)
{
	bool tty, with_stdin, attach;
	if (n < 6 || !parse_flag(f[2], &tty) || !parse_flag(f[3], &with_stdin) || !parse_flag(f[4], &attach)) {
		client_reply(c, "error exec needs: proc, tty, stdin, attach (0 or 1) and a command");
		return;
	}
	if (!valid_proc_name(f[1]) || strcmp(f[1], "init") == 0) {
		client_reply(c, "error invalid process id %s: use 1-64 of [A-Za-z0-9._-], not init", f[1]);
		return;
	}
	if (find_proc(f[1])) {
		client_reply(c, "error process id %s is already used", f[1]);
		return;
	}
	if (!g_init || g_init->reaped) {
		client_reply(c, "error the container's init has exited");
		return;
	}
	struct proc *p = new_proc(f[1], tty, with_stdin);
	char err[ERR_MAX];
	if (start_runtime(p, &f[5], err, sizeof err) < 0) {
		client_reply(c, "error %s", err);
		drop_proc(p);
		return;
	}
	p->requester = c;
	c->hold = true;
	if (attach) {
		c->attached = p;
		c->stdin_ok = with_stdin;
	}
}

static void request(struct client *c, char *payload, size_t len)
{
	if (len == 0 || payload[len - 1] != '\0') {
		client_reply(c, "error a request is NUL-terminated fields");
		return;
	}
	int n = 0;
	for (size_t i = 0; i < len; i++)
		n += payload[i] == '\0';
	char **f = malloc(sizeof(char *) * ((size_t)n + 1));
	if (!f)
		out_of_memory();
	f[0] = payload;
	for (size_t i = 0, k = 1; i + 1 < len; i++)
		if (payload[i] == '\0')
			f[k++] = payload + i + 1;
	f[n] = NULL;

	const char *verb = f[0];
	struct proc *p = n >= 2 ? find_proc(f[1]) : NULL;
	if (strcmp(verb, "status") == 0 && n == 1) {
		reply_status(c);
	} else if (strcmp(verb, "exec") == 0) {
		request_exec(c, f, n);
	} else if (strcmp(verb, "attach") == 0 && n == 3) {
		bool with_stdin;
		if (!parse_flag(f[2], &with_stdin))
			client_reply(c, "error attach: stdin must be 0 or 1");
		else if (!p || p->pid == 0)
			client_reply(c, "error no process %s", f[1]);
		else if (with_stdin && !p->with_stdin)
			client_reply(c, "error process %s was started without stdin", f[1]);
		else {
			client_reply(c, "ok");
			c->attached = p;
			c->stdin_ok = with_stdin;
			if (p->done)
				client_queue_exit(c, p);
		}
	} else if (strcmp(verb, "resize") == 0 && n == 4) {
		char *end1, *end2;
		long rows = strtol(f[2], &end1, 10), cols = strtol(f[3], &end2, 10);
		struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
		if (*end1 || *end2 || rows <= 0 || cols <= 0 || rows > 65535 || cols > 65535)
			client_reply(c, "error resize: rows and columns must be 1-65535");
		else if (!p)
			client_reply(c, "error no process %s", f[1]);
		else if (!p->tty)
			client_reply(c, "error process %s has no terminal", f[1]);
		else if (p->master < 0)
			client_reply(c, "error the terminal of process %s is closed", f[1]);
		else if (ioctl(p->master, TIOCSWINSZ, &ws) < 0)
			client_reply(c, "error resize the terminal of %s: %s", f[1], strerror(errno));
		else
			client_reply(c, "ok");
	} else if (strcmp(verb, "close_stdin") == 0 && n == 2) {
		if (!p)
			client_reply(c, "error no process %s", f[1]);
		else if (!p->with_stdin)
			client_reply(c, "error process %s was started without stdin", f[1]);
		else {
			p->stdin_closing = true;
			if (buf_size(&p->stdin_pending) == 0)
				close_stdin_now(p);
			client_reply(c, "ok");
		}
	} else {
		client_reply(c, "error unknown request %s with %d argument(s)", verb, n - 1);
	}
	free(f);
}

static void client_frame(struct client *c, int kind, char *payload, size_t len)
{
	if (kind == FRAME_REQUEST && !c->attached) {
		request(c, payload, len);
	} else if (kind == FRAME_STDIN && c->attached && c->stdin_ok) {
		struct proc *p = c->attached;
		if (p->in < 0 || p->stdin_closing)
			return; /* stdin already closed: input goes nowhere, as with a closed pipe */
		if (len == 0) {
			p->stdin_closing = true;
			if (buf_size(&p->stdin_pending) == 0)
				close_stdin_now(p);
		} else {
			buf_append(&p->stdin_pending, payload, len);
		}
	} else {
		c->dead = true; /* out of protocol: drop the client */
	}
}

static void client_read(struct client *c)
{
	ssize_t n = recv(c->fd, g_io, sizeof g_io, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->dead = true;
		return;
	}
	buf_append(&c->in, g_io, (size_t)n);
	while (!c->dead && !c->hold && buf_size(&c->in) >= HEADER_SIZE) {
		unsigned char *h = (unsigned char *)c->in.data + c->in.off;
		size_t len = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
		if (len > MAX_REQUEST || h[1] || h[2] || h[3]) {
			c->dead = true;
			return;
		}
		if (buf_size(&c->in) < HEADER_SIZE + len)
			break;
		client_frame(c, h[0], c->in.data + c->in.off + HEADER_SIZE, len);
		buf_consume(&c->in, HEADER_SIZE + len);
	}
}

static bool client_has_output(const struct client *c)
{
	return buf_size(&c->reply) > 0 || (!c->hold && buf_size(&c->out) > 0);
}

static bool client_flush_buf(struct client *c, struct buf *b)
{
	while (buf_size(b) > 0) {
		ssize_t n = send(c->fd, b->data + b->off, buf_size(b), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				c->dead = true;
			return false;
		}
		buf_consume(b, (size_t)n);
		c->progress_ms = now_ms();
	}
	return true;
}

static void client_write(struct client *c)
{
	if (client_flush_buf(c, &c->reply) && !c->hold)
		client_flush_buf(c, &c->out);
	if (c->closing && !client_has_output(c) && !c->hold)
		c->dead = true;
}

static void accept_clients(void)
{
	for (;;) {
		int fd = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct client *c = calloc(1, sizeof *c);
		if (!c)
			out_of_memory();
		c->fd = fd;
		c->progress_ms = now_ms();
		c->next = g_clients;
		g_clients = c;
	}
}

static void sweep_clients(void)
{
	bool freed = false;
	for (struct client **q = &g_clients; *q;) {
		struct client *c = *q;
		if (!c->dead) {
			q = &c->next;
			continue;
		}
		for (struct proc *p = g_procs; p; p = p->next)
			if (p->requester == c)
				p->requester = NULL;
		close(c->fd);
		buf_free(&c->in);
		buf_free(&c->reply);
		buf_free(&c->out);
		*q = c->next;
		free(c);
		freed = true;
	}
	if (freed)
		malloc_trim(0); /* what a busy client's buffers took goes back: the monitor idles small */
}

/* ---------------------------------------------------------------------------------------------- */
/* Output and input of processes */

static bool read_output(struct proc *p, int stream)
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
	for (struct client *c = g_clients; c; c = c->next)
		if (c->attached == p && !c->dead)
			buf_frame(&c->out, kind, g_io, (size_t)n);
	return true;
}

static void write_stdin(struct proc *p)
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

static void read_oom_event(void)
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

/* ---------------------------------------------------------------------------------------------- */
/* The event loop */

enum slot_kind { S_SIGNAL, S_LISTEN, S_OOM, S_CONSOLE, S_STDOUT, S_STDERR, S_STDIN, S_CLIENT };

struct slot {
	enum slot_kind kind;
	void *item;
};

static struct pollfd *g_pfds;
static struct slot *g_slots;
static size_t g_nslots, g_slot_cap;

static void watch(int fd, short events, enum slot_kind kind, void *item)
{
	if (g_nslots == g_slot_cap) {
		g_slot_cap = g_slot_cap ? g_slot_cap * 2 : 16;
		g_pfds = realloc(g_pfds, g_slot_cap * sizeof *g_pfds);
		g_slots = realloc(g_slots, g_slot_cap * sizeof *g_slots);
		if (!g_pfds || !g_slots)
			out_of_memory();
	}
	g_pfds[g_nslots] = (struct pollfd){.fd = fd, .events = events};
	g_slots[g_nslots++] = (struct slot){kind, item};
}

static bool all_done(void)
{
	for (struct proc *p = g_procs; p; p = p->next)
		if (!p->done || p->runtime)
			return false;
	return true;
}

/* Builds the poll set; returns the poll timeout in ms (-1: none). */
static int prepare(bool finishing)
{
	int64_t now = now_ms(), next = -1;
	g_nslots = 0;
	watch(g_sigfd, POLLIN, S_SIGNAL, NULL);
	if (!finishing)
		watch(g_listen, POLLIN, S_LISTEN, NULL);
	if (g_oom_efd >= 0)
		watch(g_oom_efd, POLLIN, S_OOM, NULL);
	for (struct proc *p = g_procs; p; p = p->next) {
		if (p->console >= 0)
			watch(p->console, POLLIN, S_CONSOLE, p);
		bool paused = proc_paused(p);
		if (paused)
			p->last_read_ms = now; /* a slow reader is no leftover process: keep waiting */
		for (int s = 0; s < 2; s++)
			if (p->out[s] >= 0 && !paused)
				watch(p->out[s], POLLIN, s ? S_STDERR : S_STDOUT, p);
		if (p->in >= 0 && buf_size(&p->stdin_pending) > 0)
			watch(p->in, POLLOUT, S_STDIN, p);
		if (p->reaped && !p->done && p->runtime == 0) {
			int64_t since = p->reaped_ms > p->last_read_ms ? p->reaped_ms : p->last_read_ms;
			int64_t deadline = since + DRAIN_GRACE_MS;
			if (next < 0 || deadline < next)
				next = deadline;
		}
	}
	for (struct client *c = g_clients; c; c = c->next) {
		short events = 0;
		bool stdin_full = c->attached && buf_size(&c->attached->stdin_pending) > HIGH_WATER;
		if (!c->hold && !c->closing && !stdin_full)
			events |= POLLIN;
		if (client_has_output(c))
			events |= POLLOUT;
		watch(c->fd, events, S_CLIENT, c);
		if (finishing && client_has_output(c)) {
			int64_t deadline = c->progress_ms + LINGER_MS;
			if (next < 0 || deadline < next)
				next = deadline;
		}
	}
	if (next < 0)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

/* Processes that exited long ago while something else holds their output open get recorded. */
static void expire(bool finishing)
{
	int64_t now = now_ms();
	for (struct proc *p = g_procs; p; p = p->next) {
		if (!p->reaped || p->done || p->runtime)
			continue;
		int64_t since = p->reaped_ms > p->last_read_ms ? p->reaped_ms : p->last_read_ms;
		if (now >= since + DRAIN_GRACE_MS) {
			for (int s = 0; s < 2; s++)
				if (p->out[s] >= 0)
					close_output(p, s);
			maybe_finish(p);
		}
	}
	if (finishing)
		for (struct client *c = g_clients; c; c = c->next)
			if (client_has_output(c) && now >= c->progress_ms + LINGER_MS)
				c->dead = true;
}

static void dispatch(size_t i)
{
	short rev = g_pfds[i].revents;
	void *item = g_slots[i].item;
	switch (g_slots[i].kind) {
	case S_SIGNAL: {
		struct signalfd_siginfo info;
		while (read(g_sigfd, &info, sizeof info) > 0)
			;
		reap_children();
		break;
	}
	case S_LISTEN:
		accept_clients();
		break;
	case S_OOM:
		read_oom_event();
		break;
	case S_CONSOLE:
		if (((struct proc *)item)->console >= 0)
			receive_console(item);
		break;
	case S_STDOUT:
	case S_STDERR: {
		struct proc *p = item;
		int s = g_slots[i].kind == S_STDERR;
		if (p->out[s] == g_pfds[i].fd)
			read_output(p, s);
		break;
	}
	case S_STDIN: {
		struct proc *p = item;
		if (p->in == g_pfds[i].fd && p->in >= 0)
			write_stdin(p);
		break;
	}
	case S_CLIENT: {
		struct client *c = item;
		if (c->dead)
			break;
		if (rev & (POLLIN | POLLHUP | POLLERR))
			client_read(c);
		if (!c->dead && client_has_output(c))
			client_write(c);
		else if (!c->dead && c->closing && !c->hold && !client_has_output(c))
			c->dead = true;
		break;
	}
	}
}

static void run(void)
{
	for (;;) {
		bool finishing = g_ready < 0 && all_done();
		if (finishing) {
			bool flushing = false;
			for (struct client *c = g_clients; c; c = c->next)
				flushing |= !c->dead && client_has_output(c);
			if (!flushing)
				return;
		}
		int timeout = prepare(finishing);
		int n = poll(g_pfds, g_nslots, timeout);
		if (n < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		for (size_t i = 0; n > 0 && i < g_nslots; i++)
			if (g_pfds[i].revents)
				dispatch(i);
		expire(finishing);
		sweep_clients();
		sweep_procs();
	}
}

/* ---------------------------------------------------------------------------------------------- */
/* Start-up */

__attribute__((noreturn)) static void usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "pycontainerd-monitor: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nusage: pycontainerd-monitor --dir DIR --id ID --namespace NS [--events FILE] [--tty] "
			"[--stdin] [--log-max BYTES] [--memory-cgroup PATH] --ready-fd N -- ARGV...\n");
	exit(2);
}

static char **parse_args(int argc, char **argv, bool *tty, bool *with_stdin)
{
	static char dir[PATH_MAX];
	int i;
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		const char *opt = argv[i];
		if (strcmp(opt, "--tty") == 0) {
			*tty = true;
			continue;
		}
		if (strcmp(opt, "--stdin") == 0) {
			*with_stdin = true;
			continue;
		}
		if (i + 1 >= argc)
			usage("%s needs a value", opt);
		const char *value = argv[++i];
		char *end;
		if (strcmp(opt, "--dir") == 0) {
			if (!realpath(value, dir))
				usage("--dir: cannot resolve %s", value);
			g_dir = dir;
		} else if (strcmp(opt, "--id") == 0) {
			g_id = value;
		} else if (strcmp(opt, "--namespace") == 0) {
			g_ns = value;
		} else if (strcmp(opt, "--events") == 0) {
			g_events = value;
		} else if (strcmp(opt, "--memory-cgroup") == 0) {
			g_memcg = value;
		} else if (strcmp(opt, "--log-max") == 0) {
			long long max = strtoll(value, &end, 10);
			if (*end || max < 4096)
				usage("--log-max must be a number of bytes, at least 4096: %s", value);
			g_log_max = (off_t)max;
		} else if (strcmp(opt, "--ready-fd") == 0) {
			long fd = strtol(value, &end, 10);
			if (*end || fd < 3 || fd > INT_MAX || fcntl((int)fd, F_GETFD) < 0)
				usage("--ready-fd must be an open file descriptor above 2: %s", value);
			g_ready = (int)fd;
		} else {
			usage("unknown option %s", opt);
		}
	}
	if (!g_dir || !g_id || !g_ns || g_ready < 0)
		usage("%s", "--dir, --id, --namespace and --ready-fd are required");
	if (i + 1 >= argc)
		usage("%s", "the runtime's command line must follow --");
	if (g_events && g_events[0] != '/')
		usage("--events must be an absolute path: %s", g_events);
	if (g_memcg && g_memcg[0] != '/')
		usage("--memory-cgroup must be an absolute path: %s", g_memcg);
	return &argv[i + 1];
}

static void daemonize(void)
{
	pid_t pid = fork();
	if (pid < 0)
		usage("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	setsid();
	if (chdir("/") < 0)
		fail("chdir /: %s", strerror(errno));
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	g_null = null < 0 ? -1 : fcntl(null, F_DUPFD_CLOEXEC, 3); /* above stdio, which it replaces */
	if (g_null < 0)
		fail("open /dev/null: %s", strerror(errno));
	if (null > 2)
		close(null);
	dup2(g_null, 0);
	dup2(g_null, 1);
	dup2(g_null, 2);
	int keep[2] = {g_ready < g_null ? g_ready : g_null, g_ready < g_null ? g_null : g_ready};
	close_range(3, (unsigned)keep[0] - 1, 0);
	close_range((unsigned)keep[0] + 1, (unsigned)keep[1] - 1, 0);
	close_range((unsigned)keep[1] + 1, ~0U, 0);
	fcntl(g_ready, F_SETFD, FD_CLOEXEC);
}

static void write_pid_file(void)
{
	char text[4096], line[64];
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		fail("read /proc/self/stat: %s", strerror(errno));
	text[n] = '\0';
	/* Field 22 (starttime) is the 20th after the ")" that ends field 2 (comm). */
	char *field = strrchr(text, ')');
	for (int k = 0; field && k < 20; k++)
		field = strchr(field + 1, ' ');
	if (!field)
		fail("/proc/self/stat has no start time");
	int len = snprintf(line, sizeof line, "%d %llu\n", (int)getpid(), strtoull(field + 1, NULL, 10));
	if (write_atomic("monitor.pid", line, (size_t)len) < 0)
		fail("write %s/monitor.pid: %s", g_dir, strerror(errno));
}

static void listen_control(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char path[PATH_MAX];
	path_of(path, sizeof path, "%s/monitor.sock", g_dir);
	if (strlen(path) >= sizeof addr.sun_path)
		fail("control socket path %s is longer than %zu bytes", path, sizeof addr.sun_path - 1);
	strcpy(addr.sun_path, path);
	g_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (g_listen < 0 || bind(g_listen, (struct sockaddr *)&addr, sizeof addr) < 0 || chmod(path, 0600) < 0 ||
	    listen(g_listen, 64) < 0)
		fail("listen on %s: %s", path, strerror(errno));
}

int main(int argc, char **argv)
{
	bool tty = false, with_stdin = false;
	char **runtime_argv = parse_args(argc, argv, &tty, &with_stdin);
	daemonize();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	g_sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (g_sigfd < 0)
		fail("signalfd: %s", strerror(errno));
	write_pid_file();
	listen_control();

	g_init = new_proc("init", tty, with_stdin);
	char err[ERR_MAX];
	if (start_runtime(g_init, runtime_argv, err, sizeof err) < 0)
		fail("%s", err);
	run();
	cleanup_files();
	return 0;
}
