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
 * pycontainerd/_monitor/__init__.py; the constants in monitor.h must match _protocol.py.
 *
 * The source is split by concern, with the shared declarations in monitor.h: this file holds the
 * globals, small helpers, the event loop and start-up; output.c the buffers, the framed logs, exit
 * records and events and the stdio of processes; process.c the process table, running the runtime
 * and reaping; control.c the clients of the control socket and their requests.
 */
#include "monitor.h"

const char *g_dir, *g_id, *g_ns, *g_events, *g_memcg;
off_t g_log_max = 16 << 20, g_init_log_max = 0;
const char *g_init_log;
int g_init_log_files = 1;
int g_ready = -1, g_null = -1, g_listen = -1, g_oom_efd = -1, g_oom_ctl = -1;
static int g_sigfd = -1;
struct proc *g_procs, *g_init;
struct client *g_clients;
char g_io[65536];

/* ---------------------------------------------------------------------------------------------- */
/* Small helpers */

int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Before the ready line: report on the ready fd, remove what we made, exit 1. */
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...)
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

__attribute__((noreturn)) void out_of_memory(void)
{
	/* Nothing sensible is left to do: the exit records cannot be written either. */
	fail("out of memory");
}

__attribute__((format(printf, 3, 4))) void path_of(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		fail("path too long under %s", g_dir);
}

void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

ssize_t write_all(int fd, const void *data, size_t len)
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
	fprintf(stderr, "\nusage: pycontainerd-monitor --dir DIR --id ID --namespace NS [--events FILE] [--log-max BYTES] "
			"[--log FILE [--log-max-size BYTES] [--log-max-files N]] [--memory-cgroup PATH] --ready-fd N --adopt PID (--stdout-fd N --stderr-fd N [--stdin-fd N] | "
			"--tty --console-fd N [--stdin])\n");
	exit(2);
}

/* The init the Python side created as our child, and the ends of its stdio it handed over. */
struct adopted {
	pid_t pid;
	int out, err, in, console;
};

static int fd_arg(const char *opt, const char *value)
{
	char *end;
	long fd = strtol(value, &end, 10);
	if (*end || fd < 3 || fd > INT_MAX || fcntl((int)fd, F_GETFD) < 0)
		usage("%s must be an open file descriptor above 2", opt);
	return (int)fd;
}

static void parse_args(int argc, char **argv, bool *tty, bool *with_stdin, struct adopted *a)
{
	static char dir[PATH_MAX];
	for (int i = 1; i < argc; i++) {
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
		} else if (strcmp(opt, "--log") == 0) {
			g_init_log = value;
		} else if (strcmp(opt, "--log-max-size") == 0) {
			long long max = strtoll(value, &end, 10);
			if (*end || max < 0)
				usage("--log-max-size must be a number of bytes (0: no rotation): %s", value);
			g_init_log_max = (off_t)max;
		} else if (strcmp(opt, "--log-max-files") == 0) {
			long files = strtol(value, &end, 10);
			if (*end || files < 1 || files > 1000)
				usage("--log-max-files must be a number of files, 1-1000: %s", value);
			g_init_log_files = (int)files;
		} else if (strcmp(opt, "--adopt") == 0) {
			long pid = strtol(value, &end, 10);
			if (*end || pid <= 0 || pid > INT_MAX)
				usage("--adopt must be a pid: %s", value);
			a->pid = (pid_t)pid;
		} else if (strcmp(opt, "--ready-fd") == 0) {
			g_ready = fd_arg(opt, value);
		} else if (strcmp(opt, "--stdout-fd") == 0) {
			a->out = fd_arg(opt, value);
		} else if (strcmp(opt, "--stderr-fd") == 0) {
			a->err = fd_arg(opt, value);
		} else if (strcmp(opt, "--stdin-fd") == 0) {
			a->in = fd_arg(opt, value);
		} else if (strcmp(opt, "--console-fd") == 0) {
			a->console = fd_arg(opt, value);
		} else {
			usage("unknown option %s", opt);
		}
	}
	if (!g_dir || !g_id || !g_ns || g_ready < 0 || a->pid <= 0)
		usage("%s", "--dir, --id, --namespace, --ready-fd and --adopt are required");
	if (*tty && (a->console < 0 || a->out >= 0 || a->err >= 0 || a->in >= 0))
		usage("%s", "--tty takes --console-fd, and no --stdout-fd, --stderr-fd or --stdin-fd");
	if (!*tty && (a->console >= 0 || a->out < 0 || a->err < 0 || (a->in >= 0) != *with_stdin))
		usage("%s", "without --tty: --stdout-fd and --stderr-fd, and --stdin-fd with --stdin");
	if (g_events && g_events[0] != '/')
		usage("--events must be an absolute path: %s", g_events);
	if (g_init_log && g_init_log[0] != '/')
		usage("--log must be an absolute path: %s", g_init_log);
	if (g_memcg && g_memcg[0] != '/')
		usage("--memory-cgroup must be an absolute path: %s", g_memcg);
}

/* The Python side already put us in a session of our own (setsid, then a second fork) and made the
 * init our child, so there is no fork here: the init must stay our child. /dev/null becomes our
 * stdio and every descriptor but those in keep is closed. */
static void detach_stdio(int *keep, size_t nkeep)
{
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
	keep[nkeep++] = g_null;
	for (size_t i = 1; i < nkeep; i++) /* insertion sort: a handful of descriptors */
		for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	unsigned from = 3;
	for (size_t i = 0; i < nkeep; i++) {
		if (keep[i] < 0)
			continue;
		if ((unsigned)keep[i] > from)
			close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
		fcntl(keep[i], F_SETFD, FD_CLOEXEC);
	}
	close_range(from, ~0U, 0);
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
	struct adopted a = {.out = -1, .err = -1, .in = -1, .console = -1};
	parse_args(argc, argv, &tty, &with_stdin, &a);
	int keep[6] = {g_ready, a.out, a.err, a.in, a.console};
	detach_stdio(keep, 5);
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
	if (adopt_init(g_init, a.pid, a.out, a.err, a.in, a.console, err, sizeof err) < 0) {
		/* Failing here would leave a container nobody watches: take its init down with us. */
		kill(a.pid, SIGKILL);
		fail("%s", err);
	}
	run();
	cleanup_files();
	return 0;
}
