/* The container init's set-up steps, run in the cloned child between clone3() and execve().
 *
 * Why C: the child is a copy of a Python process that may have had other threads; it must not
 * allocate, take locks or run the interpreter, and it must be fast. So the child only walks a
 * list of ops prepared by Python (pyrunc/_plan/, see native.h) and makes raw system calls. Every op returns
 * 0 or -errno; the first failure is reported to the parent as (op index, errno) on the control
 * socket and the child exits. Python turns that into a message naming the step.
 *
 * Paths marked in_root are resolved with openat2(RESOLVE_IN_ROOT) against the container's root,
 * and the kernel call then goes through /proc/self/fd/N: a symlink planted in the rootfs cannot
 * send a mount or a write outside it (CVE-2021-30465).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "native.h"

#ifndef PROC_SUPER_MAGIC
#define PROC_SUPER_MAGIC 0x9fa0
#endif

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* clone3's argument block, version 0 (64 bytes), spelled out to avoid <linux/sched.h> clashing
 * with glibc's <sched.h>. */
struct clone_args_v0 {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

/* The child's own state, on its stack: in vfork mode the child shares the parent's memory, so
 * nothing it writes may live in static storage another thread's spawn could use. */
struct child_state {
    int root_fd;
    char host_pid[16]; /* our pid as the host sees it, for the state JSON given to hooks */
    char exec_path[PATH_MAX];
    int sources[PYRUNC_MAX_SOURCES]; /* PYRUNC_OP_OPEN_SOURCE's fds, -1 where unused */
};

#define MAX_GROUPS 1024

static int fail(void) { return -errno; }

static void write_str(int fd, const char *s) {
    ssize_t ignored = write(fd, s, strlen(s));
    (void)ignored;
}

static char *fd_path(int fd, char buf[32]) {
    char digits[12];
    int n = 0;
    unsigned v = (unsigned)fd;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(buf, "/proc/self/fd/", 14);
    for (int i = 0; i < n; i++) buf[14 + i] = digits[n - 1 - i];
    buf[14 + n] = '\0';
    return buf;
}

/* Open `path` as O_PATH (plus `extra` flags), inside the root when `in_root`. */
static int open_path(struct child_state *st, const char *path, int in_root, int extra) {
    if (!in_root) return open(path, O_PATH | O_CLOEXEC | extra);
    struct open_how how = {0};
    how.flags = (uint64_t)(O_PATH | O_CLOEXEC | extra);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, st->root_fd, path, &how, sizeof how);
}

/* mkdir -p `path` inside the root; every prefix is resolved inside the root, so a symlinked
 * component cannot lead out of it. Returns an O_PATH fd of the directory or -errno. */
static int mkdirs_in_root(struct child_state *st, const char *path, mode_t mode) {
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof buf) return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    int dir = open_path(st, "/", 1, O_DIRECTORY);
    if (dir < 0) return fail();
    char *p = buf;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        char *end = p;
        while (*end && *end != '/') end++;
        char saved = *end;
        *end = '\0';
        if (mkdirat(dir, p, mode) < 0 && errno != EEXIST) {
            int err = errno;
            close(dir);
            return -err;
        }
        int next = open_path(st, buf, 1, O_DIRECTORY);
        int err = errno;
        close(dir);
        if (next < 0) return -err;
        dir = next;
        *end = saved;
        p = end;
    }
    return dir;
}

/* Split `path` into its parent (created inside the root) and last component. Returns the
 * parent's fd; *name points into `buf`. */
static int parent_in_root(struct child_state *st, const char *path, char buf[PATH_MAX], const char **name) {
    size_t len = strlen(path);
    if (len >= PATH_MAX) return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash) {
        *name = buf;
        return mkdirs_in_root(st, "/", 0755);
    }
    *slash = '\0';
    *name = slash + 1;
    if (!**name) return -EINVAL;
    return mkdirs_in_root(st, buf[0] ? buf : "/", 0755);
}

static unsigned long preserved_flags(const char *path) {
    struct statvfs st;
    if (statvfs(path, &st) < 0) return 0;
    unsigned long keep = 0;
    if (st.f_flag & ST_NOSUID) keep |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) keep |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
    if (st.f_flag & ST_NOATIME) keep |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME) keep |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME) keep |= MS_RELATIME;
    return keep;
}

/* The flags of the mount at `path` that the kernel locks when it copies a mount into a mount
 * namespace owned by a less privileged user namespace: a remount there must keep them (or it
 * fails with EPERM). The atime ones are locked as a whole: with neither noatime nor relatime the
 * mount is strictatime. */
#define ATIME_FLAGS (MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME)
static unsigned long locked_flags(const char *path) {
    struct statvfs st;
    if (statvfs(path, &st) < 0) return 0;
    unsigned long keep = preserved_flags(path);
    if (st.f_flag & ST_RDONLY) keep |= MS_RDONLY;
    if (!(st.f_flag & (ST_NOATIME | ST_RELATIME))) keep |= MS_STRICTATIME;
    return keep;
}

static int remount_ro(int fd) {
    char p[32];
    fd_path(fd, p);
    if (mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | preserved_flags(p), NULL) < 0) return fail();
    return 0;
}

static int op_mount(struct child_state *st, const struct pyrunc_op_mount *m) {
    if (!m->target) return -EINVAL;
    const char *source = m->source;
    char sp[32];
    if (m->source_slot >= 0) { /* a bind source opened earlier (PYRUNC_OP_OPEN_SOURCE) */
        if (m->source_slot >= PYRUNC_MAX_SOURCES || st->sources[m->source_slot] < 0) return -EBADF;
        source = fd_path(st->sources[m->source_slot], sp);
    }
    if (!m->in_root) return mount(source, m->target, m->fstype, m->flags, m->data) < 0 ? fail() : 0;
    /* tmpfs: create the target if it is missing; if it was there, give the new filesystem the
     * mode of the directory it covers, as runc does (--tmpfs /root stays 0700, the cgroup tmpfs
     * over sysfs's /sys/fs/cgroup 0555). */
    int fd = open_path(st, m->target, m->in_root, 0);
    int keep_mode = 0;
    struct stat covered;
    if (fd < 0 && errno == ENOENT && m->tmpfs) {
        fd = mkdirs_in_root(st, m->target, 0755);
        if (fd < 0) return fd;
    } else if (fd < 0) {
        return fail();
    } else {
        keep_mode = m->tmpfs && fstat(fd, &covered) == 0;
    }
    char p[32];
    int rc = mount(source, fd_path(fd, p), m->fstype, m->flags, m->data);
    int err = errno;
    close(fd);
    if (rc < 0) return -err;
    if (keep_mode) {
        int top = open_path(st, m->target, m->in_root, 0); /* the new mount's root now */
        if (top < 0) return fail();
        rc = chmod(fd_path(top, p), covered.st_mode & 07777);
        err = errno;
        close(top);
        if (rc < 0) return -err;
    }
    return 0;
}

static int op_open_source(struct child_state *st, const struct pyrunc_op_open_source *o) {
    if (o->slot < 0 || o->slot >= PYRUNC_MAX_SOURCES) return -EINVAL;
    int fd = open(o->path, o->flags | O_CLOEXEC);
    if (fd < 0) return fail();
    if (st->sources[o->slot] >= 0) close(st->sources[o->slot]);
    st->sources[o->slot] = fd;
    return 0;
}

static int op_bind_remount(struct child_state *st, const struct pyrunc_op_bind_remount *r) {
    int fd = open_path(st, r->path, r->in_root, 0);
    if (fd < 0) return fail();
    char p[32];
    fd_path(fd, p);
    unsigned long flags = r->flags, locked = locked_flags(p);
    if (flags & ATIME_FLAGS) locked &= ~(unsigned long)ATIME_FLAGS;
    flags |= locked & ~r->cleared;
    int rc = mount(NULL, p, NULL, flags, NULL);
    int err = errno;
    close(fd);
    return rc < 0 ? -err : 0;
}

static int mkfile_in_root(struct child_state *st, const char *path) {
    char buf[PATH_MAX];
    const char *name;
    int dir = parent_in_root(st, path, buf, &name);
    if (dir < 0) return dir;
    /* O_EXCL: an existing file is left alone (opening it for writing could need permissions a
     * user namespace's root lacks); an existing symlink or directory is left for the mount to
     * resolve (inside the root). */
    int fd = openat(dir, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    int err = errno;
    close(dir);
    if (fd < 0 && err != EEXIST) return -err;
    if (fd >= 0) close(fd);
    return 0;
}

/* A bind target made like its source, which only the init can see: in a joined mount namespace,
 * the runtime's view of the source path is not the container's. */
static int op_mktarget(struct child_state *st, const struct pyrunc_op_mktarget *m) {
    struct stat source;
    if (stat(m->source, &source) < 0) return fail();
    if (!S_ISDIR(source.st_mode)) return mkfile_in_root(st, m->path);
    int fd = mkdirs_in_root(st, m->path, 0755);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

static int op_mknod(struct child_state *st, const struct pyrunc_op_mknod *m) {
    char buf[PATH_MAX];
    const char *name;
    int dir = parent_in_root(st, m->path, buf, &name);
    if (dir < 0) return dir;
    mode_t old = umask(0);
    int rc = mknodat(dir, name, (mode_t)m->mode, (dev_t)m->dev);
    int err = errno;
    umask(old);
    if (rc < 0 && err != EEXIST) {
        close(dir);
        return -err;
    }
    rc = fchownat(dir, name, (uid_t)m->uid, (gid_t)m->gid, AT_SYMLINK_NOFOLLOW);
    err = errno;
    close(dir);
    return rc < 0 ? -err : 0;
}

static int op_symlink(struct child_state *st, const struct pyrunc_op_symlink *s) {
    char buf[PATH_MAX];
    const char *name;
    int dir = parent_in_root(st, s->path, buf, &name);
    if (dir < 0) return dir;
    int rc = symlinkat(s->target, dir, name);
    int err = errno;
    close(dir);
    return (rc < 0 && err != EEXIST) ? -err : 0;
}

static int op_pivot_root(struct child_state *st, const char *rootfs) {
    int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (oldroot < 0) return fail();
    int newroot = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (newroot < 0) {
        int err = errno;
        close(oldroot);
        return -err;
    }
    int rc = -1;
    if (fchdir(newroot) == 0 && syscall(SYS_pivot_root, ".", ".") == 0 && fchdir(oldroot) == 0 &&
        /* Make the old root a slave first, so detaching it cannot propagate to the host. */
        mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) == 0 && umount2(".", MNT_DETACH) == 0 &&
        chdir("/") == 0)
        rc = 0;
    int err = errno;
    close(oldroot);
    close(newroot);
    if (rc < 0) return -err;
    if (st->root_fd >= 0) close(st->root_fd);
    st->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    return st->root_fd < 0 ? fail() : 0;
}

static int op_move_root(struct child_state *st, const char *rootfs) {
    if (chdir(rootfs) < 0 || mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0)
        return fail();
    if (st->root_fd >= 0) close(st->root_fd);
    st->root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    return st->root_fd < 0 ? fail() : 0;
}

static int write_all(int fd, const char *text) {
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    if (n < 0) return fail();
    return (size_t)n == len ? 0 : -EIO;
}

static int op_write_file(const struct pyrunc_op_write *w) {
    int fd = open(w->path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return fail();
    int rc = write_all(fd, w->text);
    close(fd);
    return rc;
}

/* linux.sysctl, written by the init in its own namespaces (the kernel applies a namespaced sysctl
 * to the writer's namespace) and its own root. The key was checked in Python to be plain names;
 * here nothing else may lead elsewhere either: /proc/sys must be a procfs (not a directory of the
 * rootfs nor a filesystem mounted over it), and the rest of the path neither follows a symlink
 * nor crosses into a mount placed below it. */
static int op_sysctl(const struct pyrunc_op_write *w) {
    int dir = open("/proc/sys", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir < 0) return fail();
    struct statfs fs;
    int rc = fstatfs(dir, &fs) < 0 ? fail() : (fs.f_type == PROC_SUPER_MAGIC ? 0 : -EXDEV);
    if (rc < 0) {
        close(dir);
        return rc;
    }
    struct open_how how = {0};
    how.flags = (uint64_t)(O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
    int fd = (int)syscall(SYS_openat2, dir, w->path, &how, sizeof how);
    int err = errno;
    close(dir);
    if (fd < 0) return -err;
    rc = write_all(fd, w->text);
    close(fd);
    return rc;
}

static int op_capset(const struct pyrunc_op_capset *c) {
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    for (int i = 0; i < 2; i++) {
        data[i].effective = (uint32_t)(c->effective >> (32 * i));
        data[i].permitted = (uint32_t)(c->permitted >> (32 * i));
        data[i].inheritable = (uint32_t)(c->inheritable >> (32 * i));
    }
    return syscall(SYS_capset, &hdr, data) < 0 ? fail() : 0;
}

static int op_chdir(const char *path) {
    if (chdir(path) < 0) return fail();
    /* A cwd reached through a leaked host fd reads as "(unreachable)/..." (CVE-2024-21626). */
    char buf[PATH_MAX];
    if (!getcwd(buf, sizeof buf) || buf[0] != '/') return -EXDEV;
    return 0;
}

static int op_mask(struct child_state *st, const struct pyrunc_op_path *m) {
    int target = open_path(st, m->path, m->in_root, 0);
    if (target < 0) return errno == ENOENT ? 0 : fail();
    struct stat ts;
    char tp[32], np[32];
    int rc;
    fd_path(target, tp);
    if (fstat(target, &ts) < 0) {
        rc = fail();
    } else if (S_ISDIR(ts.st_mode)) {
        rc = mount("tmpfs", tp, "tmpfs", MS_RDONLY, NULL) < 0 ? fail() : 0;
    } else {
        /* The /dev/null we bind must really be the null device (CVE-2025-31133). */
        int null = open_path(st, "/dev/null", m->in_root, O_NOFOLLOW);
        struct stat ns;
        if (null < 0) {
            rc = fail();
        } else {
            if (fstat(null, &ns) < 0) rc = fail();
            else if (!S_ISCHR(ns.st_mode) || ns.st_rdev != makedev(1, 3)) rc = -EPERM;
            else rc = mount(fd_path(null, np), tp, NULL, MS_BIND, NULL) < 0 ? fail() : 0;
            close(null);
        }
    }
    close(target);
    return rc;
}

static int op_readonly(struct child_state *st, const struct pyrunc_op_path *r) {
    int target = open_path(st, r->path, r->in_root, 0);
    if (target < 0) return errno == ENOENT ? 0 : fail();
    char p[32];
    fd_path(target, p);
    int rc = mount(p, p, NULL, MS_BIND | MS_REC, NULL);
    int err = errno;
    close(target);
    if (rc < 0) return -err;
    /* Reopen: the fd above still names the covered dentry, not the new bind mount. */
    target = open_path(st, r->path, r->in_root, 0);
    if (target < 0) return fail();
    rc = remount_ro(target);
    close(target);
    return rc;
}

static int op_loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return fail();
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int err = errno;
    close(s);
    return rc < 0 ? -err : 0;
}

static int executable(const char *path) {
    struct stat st;
    if (stat(path, &st) < 0) return -errno;
    if (!S_ISREG(st.st_mode)) return -EACCES;
    return access(path, X_OK) < 0 ? -errno : 0;
}

static int op_find_exec(struct child_state *st, char *const *argv, char *const *envp) {
    const char *name = argv[0];
    if (!name || !*name) return -ENOENT;
    size_t nlen = strlen(name);
    if (strchr(name, '/')) {
        if (nlen >= sizeof st->exec_path) return -ENAMETOOLONG;
        memcpy(st->exec_path, name, nlen + 1);
        return executable(st->exec_path);
    }
    const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for (char *const *e = envp; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
    int last = -ENOENT;
    while (1) {
        const char *end = strchrnul(path, ':');
        size_t dlen = (size_t)(end - path);
        if (dlen + 1 + nlen < sizeof st->exec_path) {
            memcpy(st->exec_path, dlen ? path : ".", dlen ? dlen : 1);
            size_t at = dlen ? dlen : 1;
            st->exec_path[at] = '/';
            memcpy(st->exec_path + at + 1, name, nlen + 1);
            int rc = executable(st->exec_path);
            if (rc == 0) return 0;
            if (rc != -ENOENT && rc != -ENOTDIR) last = rc;
        }
        if (!*end) break;
        path = end + 1;
    }
    return last;
}

static int op_fifo(int fifo) {
    char p[32];
    int fd = open(fd_path(fifo, p), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail();
    ssize_t n = write(fd, "0", 1);
    int err = errno;
    close(fd);
    return n == 1 ? 0 : -err;
}

/* Run one OCI hook from inside the container's namespaces (createContainer, startContainer):
 * fork, give it the state JSON on stdin, wait for it within the timeout. Only in fork mode (the
 * plan never uses hooks with vfork), so forking here copies nothing the parent still uses. */
static int op_hook(struct child_state *st, const struct pyrunc_op_hook *h) {
    int in[2];
    if (pipe2(in, O_CLOEXEC) < 0) return fail();
    long pid = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) {
        int err = errno;
        close(in[0]);
        close(in[1]);
        return -err;
    }
    if (pid == 0) {
        if (dup2(in[0], 0) < 0) _exit(126);
        execve(h->path, h->argv, h->envp);
        _exit(127);
    }
    close(in[0]);
    /* The hook may not read its stdin: a closed pipe must not kill us. */
    struct sigaction ign = {0}, old;
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    write_str(in[1], h->state_head);
    write_str(in[1], st->host_pid);
    write_str(in[1], h->state_tail);
    close(in[1]);
    sigaction(SIGPIPE, &old, NULL);
    long waited_ms = 0;
    int status;
    while (1) {
        long r = waitpid((pid_t)pid, &status, h->timeout ? WNOHANG : 0);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return fail();
        if (h->timeout && waited_ms >= h->timeout * 1000) {
            kill((pid_t)pid, SIGKILL);
            waitpid((pid_t)pid, &status, 0);
            return -ETIMEDOUT;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        waited_ms++;
    }
    if (WIFSIGNALED(status)) return -(PYRUNC_HOOK_SIGNAL + WTERMSIG(status));
    if (WEXITSTATUS(status)) return -(PYRUNC_HOOK_STATUS + WEXITSTATUS(status));
    return 0;
}

/* process.terminal: make the pty inside the container's own devpts (so the container sees it
 * as /dev/pts/N), hand the master to whoever listens on the console socket (one fd in
 * SCM_RIGHTS, as runc sends it), and make the slave our controlling terminal and stdio. */
static int op_console(const struct pyrunc_op_console *c) {
    int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return fail();
    int unlock = 0, rc = -1, slave = -1;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) goto out;
    slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    if (slave < 0) goto out;
    if (c->rows && c->cols) {
        struct winsize ws = {(unsigned short)c->rows, (unsigned short)c->cols, 0, 0};
        if (ioctl(slave, TIOCSWINSZ, &ws) < 0) goto out;
    }
    char name[] = "/dev/ptmx";
    struct iovec iov = {name, sizeof name - 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &master, sizeof(int));
    if (sendmsg(c->socket, &msg, MSG_NOSIGNAL) < 0) goto out;
    if (setsid() < 0 && errno != EPERM) goto out; /* EPERM: already a session leader */
    if (ioctl(slave, TIOCSCTTY, 0) < 0) goto out;
    for (int fd = 0; fd < 3; fd++)
        if (dup2(slave, fd) < 0) goto out;
    rc = 0;
out:
    rc = rc < 0 ? -errno : 0;
    close(master);
    if (slave > 2) close(slave);
    return rc;
}

/* A joined user namespace owns only the namespaces made after joining it, and a new pid namespace
 * takes only the children of whoever unshared it: the init is a child made here, in it. With
 * CLONE_PARENT it is the runtime's child (the runtime waits for it as for us); we tell the
 * runtime its pid and leave. Only in fork mode (the plan uses it with user namespaces only). */
static int op_fork(const struct pyrunc_spawn *s, struct child_state *st) {
    struct clone_args_v0 args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_PARENT; /* the exit signal is the runtime's child's: SIGCHLD */
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) return fail();
    if (pid > 0) {
        struct pyrunc_report r = {-4, (int)pid};
        if (send(s->ctl_fd, &r, sizeof r, MSG_NOSIGNAL) < 0) kill((pid_t)pid, SIGKILL);
        _exit(0);
    }
    ssize_t n = readlink("/proc/self", st->host_pid, sizeof st->host_pid - 1);
    st->host_pid[n > 0 ? n : 0] = '\0';
    return 0;
}

static int run_op(const struct pyrunc_spawn *s, struct child_state *st, const struct pyrunc_op *op) {
    switch (op->kind) {
    case PYRUNC_OP_WAIT: {
        char byte;
        ssize_t n = recv(s->ctl_fd, &byte, 1, 0);
        return n == 1 ? 0 : (n == 0 ? -ECONNRESET : fail());
    }
    case PYRUNC_OP_READY: {
        struct pyrunc_report r = {-1, 0};
        return send(s->ctl_fd, &r, sizeof r, MSG_NOSIGNAL) < 0 ? fail() : 0;
    }
    case PYRUNC_OP_SETNS: {
        const struct pyrunc_op_setns *n = &op->setns;
        if (n->slot < 0 || n->slot >= PYRUNC_MAX_SOURCES || st->sources[n->slot] < 0) return -EBADF;
        int fd = st->sources[n->slot];
        st->sources[n->slot] = -1;
        int rc = setns(fd, n->nstype);
        int err = errno;
        close(fd);
        return rc < 0 ? -err : 0;
    }
    case PYRUNC_OP_UNSHARE:
        return unshare(op->unshare.flags) < 0 ? fail() : 0;
    case PYRUNC_OP_OPEN_ROOT:
        if (st->root_fd >= 0) close(st->root_fd);
        st->root_fd = open(op->path.path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        return st->root_fd < 0 ? fail() : 0;
    case PYRUNC_OP_MOUNT:
        return op_mount(st, &op->mount);
    case PYRUNC_OP_MKDIRS: {
        int fd = mkdirs_in_root(st, op->mkdirs.path, (mode_t)op->mkdirs.mode);
        if (fd < 0) return fd;
        close(fd);
        return 0;
    }
    case PYRUNC_OP_MKFILE:
        return mkfile_in_root(st, op->path.path);
    case PYRUNC_OP_MKNOD:
        return op_mknod(st, &op->mknod);
    case PYRUNC_OP_SYMLINK:
        return op_symlink(st, &op->symlink);
    case PYRUNC_OP_PIVOT_ROOT:
        return op_pivot_root(st, op->path.path);
    case PYRUNC_OP_MOVE_ROOT:
        return op_move_root(st, op->path.path);
    case PYRUNC_OP_SETHOSTNAME:
        return sethostname(op->name.name, strlen(op->name.name)) < 0 ? fail() : 0;
    case PYRUNC_OP_SETDOMAINNAME:
        return setdomainname(op->name.name, strlen(op->name.name)) < 0 ? fail() : 0;
    case PYRUNC_OP_WRITE_FILE:
        return op_write_file(&op->write);
    case PYRUNC_OP_RLIMIT: {
        struct rlimit rl = {(rlim_t)op->rlimit.soft, (rlim_t)op->rlimit.hard};
        return prlimit(0, op->rlimit.resource, &rl, NULL) < 0 ? fail() : 0;
    }
    case PYRUNC_OP_PRCTL:
        return prctl(op->prctl.option, op->prctl.arg2, op->prctl.arg3, 0, 0) < 0 ? fail() : 0;
    case PYRUNC_OP_CAPBSET:
        for (long cap = 0; cap <= op->capbset.last_cap; cap++)
            if (!((op->capbset.keep >> cap) & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
                return fail();
        return 0;
    case PYRUNC_OP_SETGROUPS: {
        gid_t groups[MAX_GROUPS];
        int n = op->setgroups.n_gids;
        if (n < 0 || n > MAX_GROUPS) return -E2BIG;
        for (int i = 0; i < n; i++) groups[i] = (gid_t)op->setgroups.gids[i];
        /* Raw syscalls: glibc's wrappers would try to signal the parent's other threads. */
        return syscall(SYS_setgroups, n, groups) < 0 ? fail() : 0;
    }
    case PYRUNC_OP_SETRESGID: {
        unsigned int id = op->setresid.id;
        return syscall(SYS_setresgid, id, id, id) < 0 ? fail() : 0;
    }
    case PYRUNC_OP_SETRESUID: {
        unsigned int id = op->setresid.id;
        return syscall(SYS_setresuid, id, id, id) < 0 ? fail() : 0;
    }
    case PYRUNC_OP_CAPSET:
        return op_capset(&op->capset);
    case PYRUNC_OP_UMASK:
        umask((mode_t)op->umask.mask);
        return 0;
    case PYRUNC_OP_CHDIR:
        return op_chdir(op->path.path);
    case PYRUNC_OP_MASK:
        return op_mask(st, &op->path);
    case PYRUNC_OP_READONLY:
        return op_readonly(st, &op->path);
    case PYRUNC_OP_REMOUNT_RO: {
        int fd = open_path(st, op->path.path, op->path.in_root, 0);
        if (fd < 0) return fail();
        int rc = remount_ro(fd);
        close(fd);
        return rc;
    }
    case PYRUNC_OP_LOOPBACK_UP:
        return op_loopback_up();
    case PYRUNC_OP_FIND_EXEC:
        return op_find_exec(st, s->argv, s->envp);
    case PYRUNC_OP_FIFO:
        return op_fifo(op->fifo.fd);
    case PYRUNC_OP_CLOEXEC_FROM:
        return syscall(SYS_close_range, (unsigned)op->cloexec_from.first, ~0U, CLOSE_RANGE_CLOEXEC) < 0 ? fail() : 0;
    case PYRUNC_OP_EXEC:
        /* vfork mode: tell the parent we got this far; a child that dies before here (killed,
         * OOM) leaves -1, and a failing execve overwrites this with the error. */
        if (s->report) s->report->index = -2;
        execve(st->exec_path, s->argv, s->envp);
        return fail();
    case PYRUNC_OP_SET_DUMPABLE:
        return prctl(PR_SET_DUMPABLE, op->dumpable.value, 0, 0, 0) < 0 ? fail() : 0;
    case PYRUNC_OP_DUP2:
        return dup2(op->dup2.old_fd, op->dup2.new_fd) < 0 ? fail() : 0;
    case PYRUNC_OP_SYNC: {
        struct pyrunc_report r = {-3, 0};
        char byte;
        if (send(s->ctl_fd, &r, sizeof r, MSG_NOSIGNAL) < 0) return fail();
        ssize_t n = recv(s->ctl_fd, &byte, 1, 0);
        return n == 1 ? 0 : (n == 0 ? -ECONNRESET : fail());
    }
    case PYRUNC_OP_HOOK:
        return op_hook(st, &op->hook);
    case PYRUNC_OP_CONSOLE:
        return op_console(&op->console);
    case PYRUNC_OP_OPEN_SOURCE:
        return op_open_source(st, &op->open_source);
    case PYRUNC_OP_BIND_REMOUNT:
        return op_bind_remount(st, &op->bind_remount);
    case PYRUNC_OP_FORK:
        return op_fork(s, st);
    case PYRUNC_OP_SYSCTL:
        return op_sysctl(&op->write);
    case PYRUNC_OP_MKTARGET:
        return op_mktarget(st, &op->mktarget);
    case PYRUNC_OP_JOIN_KEYRING:
        /* KEYCTL_JOIN_SESSION_KEYRING: keys made in the container stay out of the host's. */
        return syscall(SYS_keyctl, 1, op->name.name) < 0 ? fail() : 0;
    case PYRUNC_OP_SECCOMP: {
        /* The program was compiled by the parent (pyrunc/_plan/seccomp.py): only the kernel call here. */
        const struct pyrunc_op_seccomp *f = &op->seccomp;
        if (f->length <= 0 || f->length % (long)sizeof(struct sock_filter)) return -EINVAL;
        struct sock_fprog prog = {(unsigned short)(f->length / (long)sizeof(struct sock_filter)),
                                  (struct sock_filter *)(uintptr_t)f->program};
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, f->flags, &prog) < 0 ? fail() : 0;
    }
    }
    return -EINVAL;
}

static void report(const struct pyrunc_spawn *s, struct child_state *st, int index, int err) {
    if (s->report) {
        /* vfork mode: the parent is suspended until we exit and reads this from our shared memory. */
        s->report->index = index;
        s->report->err = err;
        return;
    }
    struct pyrunc_report r = {index, err};
    if (send(s->ctl_fd, &r, sizeof r, MSG_NOSIGNAL) < 0 && s->ops[index].kind == PYRUNC_OP_EXEC) {
        /* Nobody is listening any more (pyrunc create has returned): say it on stderr. */
        write_str(2, "pyrunc: exec ");
        write_str(2, st->exec_path);
        write_str(2, ": ");
        write_str(2, strerror(err));
        write_str(2, "\n");
    }
}

static _Noreturn void child(const struct pyrunc_spawn *s) {
    struct child_state st;
    st.root_fd = -1;
    st.exec_path[0] = '\0';
    for (int i = 0; i < PYRUNC_MAX_SOURCES; i++) st.sources[i] = -1;
    /* /proc is still the host's here: /proc/self names our pid as the host sees it. */
    ssize_t n = readlink("/proc/self", st.host_pid, sizeof st.host_pid - 1);
    st.host_pid[n > 0 ? n : 0] = '\0';
    /* Start from default signal handling: the interpreter ignores SIGPIPE and SIGXFSZ and has
     * its own handlers, and ignored signals would survive exec. Handlers first, then unblock
     * (in vfork mode the parent blocked everything around the clone). */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int i = 0; i < s->n_ops; i++) {
        int rc = run_op(s, &st, &s->ops[i]);
        if (rc < 0) {
            report(s, &st, i, -rc);
            _exit(rc == -ECONNRESET ? 1 : 127);
        }
    }
    _exit(127);
}

static int child_fn(void *arg) { child(arg); }

/* vfork mode: share the parent's memory, run on a stack of our own, and let the parent resume
 * only once we have exec'd or failed. No page tables are copied and exec has no copy to tear
 * down, which makes a spawn from a large Python process cheaper. The parent takes no part
 * in set-up, so the ops join the cgroups themselves. */
static long clone_vfork(const struct pyrunc_spawn *s) {
    const size_t size = 1 << 20;
    void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return -1;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = clone(child_fn, (char *)stack + size, CLONE_VM | CLONE_VFORK | SIGCHLD | (int)s->clone_flags,
                     (void *)s);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, size);
    errno = err;
    return pid;
}

int pyrunc_spawn(const struct pyrunc_spawn *s) {
    int own_pidns = -1, own_timens = -1, err = 0;
    long pid = -1;
    if (s->join_pidns_fd >= 0) {
        own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
        if (own_pidns < 0 || setns(s->join_pidns_fd, CLONE_NEWPID) < 0) goto out;
    }
    if (s->join_timens_fd >= 0 || s->time_offsets) {
        own_timens = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC);
        if (own_timens < 0) goto out;
        if (s->join_timens_fd >= 0) {
            if (setns(s->join_timens_fd, CLONE_NEWTIME) < 0) goto out;
        } else {
            /* A new time namespace takes its offsets before its first process enters it, so
             * unshare here (only our future children enter it) and write ours. */
            if (unshare(CLONE_NEWTIME) < 0) goto out;
            int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
            if (fd < 0) goto out;
            size_t len = strlen(s->time_offsets);
            ssize_t n = len ? write(fd, s->time_offsets, len) : 0;
            int werr = errno;
            close(fd);
            if (n < 0) {
                errno = werr;
                goto out;
            }
        }
    }
    if (s->report) {
        pid = clone_vfork(s);
    } else {
        struct clone_args_v0 args;
        memset(&args, 0, sizeof args);
        args.flags = s->clone_flags;
        args.exit_signal = SIGCHLD;
        pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid == 0) child(s);
    }
out:
    err = errno;
    /* Put the parent back in its own namespaces for the children it makes later. */
    if (own_pidns >= 0) {
        setns(own_pidns, CLONE_NEWPID);
        close(own_pidns);
    }
    if (own_timens >= 0) {
        setns(own_timens, CLONE_NEWTIME);
        close(own_timens);
    }
    return pid < 0 ? -err : (int)pid;
}
