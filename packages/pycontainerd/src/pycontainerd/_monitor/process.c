/*
 * pycontainerd-monitor, processes: the table of the container's processes (init and execs),
 * adopting the init the Python side created as our child, running the runtime (pyrunc exec) for
 * each exec, taking the pty masters they send, reaping exits and recording them once the output
 * is drained.
 *
 * C for the reason monitor.c gives: one monitor runs per container for its whole life and must
 * stay smaller than containerd-shim-runc-v2, and a subreaper has to handle SIGCHLD itself.
 */
#include "monitor.h"

struct pending_exit {
	pid_t pid;
	int status;
	struct timespec at;
};

static struct pending_exit g_pending[MAX_PENDING_EXITS];
static int g_npending;

static void set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* ---------------------------------------------------------------------------------------------- */
/* Processes */

struct proc *find_proc(const char *name)
{
	for (struct proc *p = g_procs; p; p = p->next)
		if (!p->dropped && strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

struct proc *new_proc(const char *name, bool tty, bool with_stdin)
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

void close_output(struct proc *p, int stream)
{
	if (p->tty && stream == 0) {
		close_fd(&p->master);
		p->out[0] = p->in = -1;
		buf_free(&p->stdin_pending);
	} else {
		close_fd(&p->out[stream]);
	}
}

void close_stdin_now(struct proc *p)
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
void drop_proc(struct proc *p)
{
	release_proc(p);
	p->dropped = true;
	p->done = true;
	for (struct client *c = g_clients; c; c = c->next)
		if (c->attached == p)
			c->attached = NULL;
}

void sweep_procs(void)
{
	for (struct proc **q = &g_procs; *q;) {
		struct proc *p = *q;
		if (p->dropped) {
			*q = p->next;
			free(p->log_path);
			free(p);
		} else {
			q = &p->next;
		}
	}
}

void exit_json(const struct proc *p, struct buf *b)
{
	char when[64];
	rfc3339(when, sizeof when, &p->exited_at);
	buf_printf(b, "{\"pid\": %d, \"status\": %d, \"exited_at\": \"%s\", \"oom_killed\": %s}", (int)p->pid,
		   p->status, when, p->oom_killed ? "true" : "false");
}

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

void maybe_finish(struct proc *p)
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

bool proc_paused(const struct proc *p)
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
int start_runtime(struct proc *p, char *const argv[], char *err, size_t errlen)
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
void receive_console(struct proc *p)
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

/* The last line the failed runtime wrote to stderr (it goes to the process's log), if any. */
static void runtime_error_line(struct proc *p, char *out, size_t size)
{
	out[0] = '\0';
	while (p->out[1] >= 0 && read_output(p, 1))
		;
	int fd = p->log_path ? open(p->log_path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return;
	ssize_t n = read(fd, g_io, sizeof g_io); /* a runtime says little before failing */
	close(fd);
	const char *last = NULL;
	size_t last_len = 0;
	for (ssize_t at = 0; n > 0 && at + HEADER_SIZE <= n;) {
		const unsigned char *h = (const unsigned char *)g_io + at;
		size_t len = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
		if (at + HEADER_SIZE + (ssize_t)len + TRAILER_SIZE > n)
			break;
		const char *line = g_io + at + HEADER_SIZE;
		size_t line_len = len;
		while (line_len > 0 && (line[line_len - 1] == '\n' || line[line_len - 1] == '\r' || line[line_len - 1] == ' '))
			line_len--;
		if (h[0] == FRAME_STDERR && line_len > 0) { /* one record per line: the last that says something */
			last = line;
			last_len = line_len;
		}
		at += HEADER_SIZE + (ssize_t)len + TRAILER_SIZE;
	}
	if (last_len)
		snprintf(out, size, ": %.*s", (int)(last_len < 400 ? last_len : 400), last);
}

/* The runtime (pyrunc exec) has exited with status. */
static void runtime_done(struct proc *p, int status)
{
	char err[ERR_MAX] = "";
	p->runtime = 0;
	if (status != 0) {
		char line[512];
		runtime_error_line(p, line, sizeof line);
		snprintf(err, sizeof err, "exec exited with status %d%s", status, line);
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
		if (p->requester) {
			p->requester->hold = false;
			client_reply(p->requester, "error %s", err);
			if (p->requester->attached == p)
				p->requester->closing = true;
		}
		if (p->log_path) /* the name can be used again: start its log afresh */
			unlink(p->log_path);
		drop_proc(p);
		return;
	}
	if (p->requester) {
		p->requester->hold = false;
		client_reply(p->requester, "ok %d", (int)p->pid);
	}
	p->requester = NULL;
	take_pending_exit(p);
	maybe_finish(p);
}

/* Take over the init, our child already: the read ends of its pipes, or the console socket its pty
 * master waits on; its log and OOM notices. Then say ready, and reap it if it is gone already. */
int adopt_init(struct proc *p, pid_t pid, int out, int err_fd, int in, int console, char *err, size_t errlen)
{
	p->pid = pid;
	if (open_log(p, err, errlen) < 0)
		return -1;
	if (p->tty) {
		p->console = console;
		receive_console(p);
		if (p->master < 0) {
			char path[PATH_MAX];
			console_path(p, path, sizeof path);
			close_console(p);
			snprintf(err, errlen, "the container did not send its terminal on %s", path);
			return -1;
		}
	} else {
		p->out[0] = out;
		p->out[1] = err_fd;
		p->in = in;
		set_nonblock(out);
		set_nonblock(err_fd);
		if (in >= 0)
			set_nonblock(in);
	}
	if (g_memcg && setup_oom_notification(err, errlen) < 0)
		return -1;
	dprintf(g_ready, "ok %d\n", (int)pid);
	close_fd(&g_ready);
	reap_children();
	return 0;
}

static int exit_status(int wstatus)
{
	return WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : WEXITSTATUS(wstatus);
}

void reap_children(void)
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
