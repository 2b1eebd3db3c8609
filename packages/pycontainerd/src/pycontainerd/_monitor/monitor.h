/*
 * pycontainerd-monitor's internal header: the constants, the process and client records, the
 * globals and the functions its source files share (the frame kinds must match _protocol.py). The
 * program and why it is C: see monitor.c.
 *
 * Files: monitor.c (helpers, the event loop, start-up), output.c (buffers, the framed logs, exit
 * records, events, stdio of processes), process.c (the process table, running the runtime,
 * reaping), control.c (clients of the control socket and their requests).
 */
#ifndef PYCONTAINERD_MONITOR_H
#define PYCONTAINERD_MONITOR_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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
/* A log record is a frame (header and payload) followed by a trailer: the time it was read (int64 BE,
 * nanoseconds since the epoch) and the payload length again (uint32 BE), so that the log can be read
 * backwards. One record per line of output (a line's last piece when the read ended mid-line). */
#define TRAILER_SIZE 12
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
	pid_t pid;     /* 0 until the runtime wrote the pid file (init: adopted with its pid) */
	pid_t runtime; /* the runtime (pyrunc exec) while it runs */
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
	char *log_path; /* init: --log (DIR/init.log without); an exec: DIR/PROC.log */
	off_t log_max;  /* rotate before a record that would take the file past this; 0: never */
	int log_files;  /* files kept with rotation (the current one included); 1: the file starts anew */
	unsigned long long oom_base;
	struct client *requester; /* exec: the connection waiting for the reply */
};

/* What a client attached to a process gets: its output (attach, exec with attach), nothing but the
 * exit (wait), or an empty frame when output came and none is pending yet, then the exit (watch). */
enum client_mode { C_OUTPUT, C_WAIT, C_WATCH };

struct client {
	struct client *next;
	int fd;
	struct proc *attached;
	enum client_mode mode;
	bool stdin_ok, hold, closing, dead;
	int64_t progress_ms;
	struct buf in, reply, out;
};

/* Globals (defined in monitor.c) */

extern const char *g_dir, *g_id, *g_ns, *g_events, *g_memcg;
extern off_t g_log_max, g_init_log_max;
extern const char *g_init_log;
extern int g_init_log_files;
extern int g_ready, g_null, g_listen, g_oom_efd, g_oom_ctl;
extern struct proc *g_procs, *g_init;
extern struct client *g_clients;
extern char g_io[65536];

/* monitor.c: small helpers */

int64_t now_ms(void);
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...);
__attribute__((noreturn)) void out_of_memory(void);
__attribute__((format(printf, 3, 4))) void path_of(char *out, size_t size, const char *fmt, ...);
void close_fd(int *fd);
ssize_t write_all(int fd, const void *data, size_t len);

/* output.c: buffers, files under DIR, output and input of processes */

size_t buf_size(const struct buf *b);
void buf_free(struct buf *b);
void buf_append(struct buf *b, const void *data, size_t len);
void buf_consume(struct buf *b, size_t n);
__attribute__((format(printf, 2, 3))) void buf_printf(struct buf *b, const char *fmt, ...);
void buf_frame(struct buf *b, int kind, const void *data, size_t len);
void rfc3339(char *out, size_t size, const struct timespec *ts);
void cleanup_files(void);
int write_atomic(const char *name, const char *data, size_t len);
void append_event(struct buf *line);
void event_header(struct buf *b, const char *topic);
unsigned long long read_oom_kills(void);
int open_log(struct proc *p, char *err, size_t errlen);
bool read_output(struct proc *p, int stream);
void write_stdin(struct proc *p);
void read_oom_event(void);

/* process.c: processes, adopting the init, running the runtime for execs */

struct proc *find_proc(const char *name);
struct proc *new_proc(const char *name, bool tty, bool with_stdin);
void close_output(struct proc *p, int stream);
void close_stdin_now(struct proc *p);
void drop_proc(struct proc *p);
void sweep_procs(void);
void exit_json(const struct proc *p, struct buf *b);
void maybe_finish(struct proc *p);
bool proc_paused(const struct proc *p);
int start_runtime(struct proc *p, char *const argv[], char *err, size_t errlen);
int adopt_init(struct proc *p, pid_t pid, int out, int err_fd, int in, int console, char *err, size_t errlen);
void receive_console(struct proc *p);
void reap_children(void);

/* control.c: clients of the control socket */

__attribute__((format(printf, 2, 3))) void client_reply(struct client *c, const char *fmt, ...);
void client_queue_exit(struct client *c, const struct proc *p);
void client_read(struct client *c);
bool client_has_output(const struct client *c);
void client_write(struct client *c);
void accept_clients(void);
void sweep_clients(void);

#endif
