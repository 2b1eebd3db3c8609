/*
 * pycontainerd-monitor, control: the clients of DIR/monitor.sock and the protocol they speak
 * (requests and replies: status, exec, attach, wait, watch, resize, close_stdin, forget; stdin frames from attached
 * clients), with per-client buffers held back while an exec is pending.
 *
 * C for the reason monitor.c gives: one monitor runs per container for its whole life and must
 * stay smaller than containerd-shim-runc-v2. The Python side of the protocol is _client.py.
 */
#include "monitor.h"

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

/* ---------------------------------------------------------------------------------------------- */
/* Clients of the control socket */

void client_reply(struct client *c, const char *fmt, ...)
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

void client_queue_exit(struct client *c, const struct proc *p)
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
	} else if ((strcmp(verb, "wait") == 0 || strcmp(verb, "watch") == 0) && n == 2) {
		/* The exit frame when the process is recorded (at once if it is): a waiter sleeps on the
		 * socket instead of polling the exit record; a watcher also gets an empty output frame
		 * whenever output reached the log, and reads the log itself. */
		if (!p || p->pid == 0) {
			client_reply(c, "error no process %s", f[1]);
		} else {
			client_reply(c, "ok");
			c->attached = p;
			c->mode = strcmp(verb, "wait") == 0 ? C_WAIT : C_WATCH;
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
	} else if (strcmp(verb, "forget") == 0 && n == 2) {
		/* An exec that has exited and been read: its record and files go, as containerd deletes
		 * an exec process, so that a container probed for ever (health checks) keeps no trail. */
		if (!p || p->pid == 0)
			client_reply(c, "error no process %s", f[1]);
		else if (p == g_init)
			client_reply(c, "error the init is forgotten with its task");
		else if (!p->done)
			client_reply(c, "error process %s is running", f[1]);
		else {
			static const char *const suffixes[] = {"json", "pid", "exit", "log", "console.sock"};
			for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
				char path[PATH_MAX];
				path_of(path, sizeof path, "%s/%s.%s", g_dir, p->name, suffixes[i]);
				unlink(path);
			}
			drop_proc(p);
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

void client_read(struct client *c)
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

bool client_has_output(const struct client *c)
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

void client_write(struct client *c)
{
	if (client_flush_buf(c, &c->reply) && !c->hold)
		client_flush_buf(c, &c->out);
	if (c->closing && !client_has_output(c) && !c->hold)
		c->dead = true;
}

void accept_clients(void)
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

void sweep_clients(void)
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
