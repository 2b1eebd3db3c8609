/* The C side of pyrunc: what must run between clone() and execve().
 *
 * Python compiles a runtime spec into a flat list of set-up steps ("ops"); pyrunc_spawn() clones
 * the container's init and the child executes the ops in order, in C, never returning to Python.
 * Doing the child's work in C keeps it free of the interpreter (no allocations, no GIL, no
 * after-fork hazards in a threaded parent) and keeps a spawn cheap.
 *
 * This header is read twice: by the C compiler and by cffi's cdef parser, so it holds only
 * plain declarations and integer #defines.
 */

/* Op kinds. Arguments per op are documented in native.c next to each case. */
#define PYRUNC_OP_WAIT 1           /* recv one message from the control socket: continue */
#define PYRUNC_OP_READY 2          /* send "ready" on the control socket */
#define PYRUNC_OP_SETNS 3          /* setns to the namespace file a (type flags); with one id, to the
                                      file opened in that slot (PYRUNC_OP_OPEN_SOURCE), then closed */
#define PYRUNC_OP_UNSHARE 4        /* unshare(flags) */
#define PYRUNC_OP_OPEN_ROOT 5      /* open the directory a as the root of later in-root paths */
#define PYRUNC_OP_MOUNT 6          /* mount(a, target b, c, flags, d); b resolved in root if in_root */
#define PYRUNC_OP_MKDIRS 7         /* mkdir -p of b inside the root (mode num) */
#define PYRUNC_OP_MKFILE 8         /* create empty file b inside the root (parents made) */
#define PYRUNC_OP_MKNOD 9          /* mknod b inside root: mode num, dev flags, uid/gid in ids */
#define PYRUNC_OP_SYMLINK 10       /* symlink target a at b inside the root, if b is absent */
#define PYRUNC_OP_PIVOT_ROOT 11    /* pivot_root into a (the rootfs) and detach the old root */
#define PYRUNC_OP_MOVE_ROOT 12     /* --no-pivot: MS_MOVE a onto / then chroot */
#define PYRUNC_OP_SETHOSTNAME 13   /* sethostname(a) */
#define PYRUNC_OP_SETDOMAINNAME 14 /* setdomainname(a) */
#define PYRUNC_OP_WRITE_FILE 15    /* write string b into the existing file a */
#define PYRUNC_OP_RLIMIT 16        /* prlimit(0, num, soft=ids[0], hard=ids[1]) */
#define PYRUNC_OP_PRCTL 17         /* prctl(num, flags, ids[0]) */
#define PYRUNC_OP_CAPBSET 18       /* drop every bounding cap not in mask ids[0], up to num (last cap) */
#define PYRUNC_OP_SETGROUPS 19     /* setgroups(n_ids, ids) */
#define PYRUNC_OP_SETRESGID 20     /* setresgid(num, num, num) */
#define PYRUNC_OP_SETRESUID 21     /* setresuid(num, num, num) */
#define PYRUNC_OP_CAPSET 22        /* capset: ids = {effective, permitted, inheritable} masks */
#define PYRUNC_OP_UMASK 23         /* umask(num) */
#define PYRUNC_OP_CHDIR 24         /* chdir(a) and check the result is inside the root */
#define PYRUNC_OP_MASK 25          /* mask path a: /dev/null over a file, read-only tmpfs over a dir */
#define PYRUNC_OP_READONLY 26      /* bind a onto itself read-only, keeping its other flags */
#define PYRUNC_OP_REMOUNT_RO 27    /* remount the mount at a read-only, keeping its other flags */
#define PYRUNC_OP_LOOPBACK_UP 28   /* set the "lo" interface up */
#define PYRUNC_OP_FIND_EXEC 29     /* resolve argv[0] with PATH from envp; kept for EXEC */
#define PYRUNC_OP_FIFO 30          /* open /proc/self/fd/num for writing (blocks until start) */
#define PYRUNC_OP_CLOEXEC_FROM 31  /* mark every fd >= num close-on-exec */
#define PYRUNC_OP_EXEC 32          /* execve(found path, argv, envp) */
#define PYRUNC_OP_SET_DUMPABLE 33  /* prctl(PR_SET_DUMPABLE, num) */
#define PYRUNC_OP_DUP2 34          /* dup2(num, flags): hand a pipe to the child as stdio */
#define PYRUNC_OP_JOIN_KEYRING 35  /* join a new session keyring named a */
#define PYRUNC_OP_SYNC 36          /* send (-3, 0) ("run your hooks") and wait for one message */
#define PYRUNC_OP_HOOK 37          /* run hook a (argv, envp of the op) with stdin b + host pid + c,
                                      within num seconds (0: no limit) */
#define PYRUNC_OP_SECCOMP 38       /* seccomp(SET_MODE_FILTER, flags, the BPF program a of num bytes) */
#define PYRUNC_OP_CONSOLE 39       /* new pty from /dev/ptmx: master sent on socket fd num, slave
                                      becomes the controlling terminal and stdio; ids: rows, cols */
#define PYRUNC_OP_OPEN_SOURCE 40   /* open a (not in root) with open flags flags | O_CLOEXEC into slot
                                      num: bind sources (O_PATH) and namespace files opened before
                                      the init joins or becomes root of a user namespace */
#define PYRUNC_OP_BIND_REMOUNT 41  /* remount the bind mount at b (in root) with flags, plus the flags
                                      the kernel locked on it in a user namespace (nosuid, nodev,
                                      noexec, ro; atime ones if flags has none) but those in num */
#define PYRUNC_OP_FORK 42          /* clone3(CLONE_PARENT): the new process (first in the pid namespace
                                      unshared before) goes on with the ops; the old one sends
                                      (-4, new pid) on the control socket and exits */
#define PYRUNC_OP_SYSCTL 43        /* write string b into /proc/sys/a (a relative path), resolved beneath
                                      /proc/sys, which must be a procfs, following no symlink and
                                      crossing no mount */
#define PYRUNC_OP_MKTARGET 44      /* create b inside the root as the target of a bind of a (not in root,
                                      symlinks followed as the bind follows them): a directory (mode
                                      0755) if a is one, else an empty file */

/* PYRUNC_OP_MOUNT with one id binds from source slot ids[0] instead of the path a. */
#define PYRUNC_MAX_SOURCES 1024

struct pyrunc_op {
    int kind;
    int in_root;            /* resolve path b (or a) inside the opened root */
    long num;
    unsigned long flags;
    const char *a;
    const char *b;
    const char *c;
    const char *d;
    const unsigned long long *ids;
    int n_ids;
    char *const *argv; /* PYRUNC_OP_HOOK: the hook's argv and environment */
    char *const *envp;
};

/* The message the child sends on the control socket: index -1 means ready, -3 asks the parent to
 * run its hooks (PYRUNC_OP_SYNC), -4 gives the pid of the process that takes over (PYRUNC_OP_FORK)
 * in `err`, otherwise op number `index` failed with `err` (an errno value,
 * or PYRUNC_HOOK_STATUS + the exit status of a failed hook, PYRUNC_HOOK_SIGNAL + the signal that
 * killed it). In vfork mode the child writes it in
 * place instead: -2 once it reaches exec, -1 (untouched) if it died before. */
#define PYRUNC_HOOK_STATUS 1000
#define PYRUNC_HOOK_SIGNAL 2000

struct pyrunc_report {
    int index;
    int err;
};

struct pyrunc_spawn {
    unsigned long long clone_flags; /* CLONE_NEW* namespaces the child is created in */
    int ctl_fd;                     /* the child's end of the SOCK_SEQPACKET control pair */
    struct pyrunc_report *report;   /* non-NULL: vfork mode, failures are written here */
    int join_pidns_fd;              /* >= 0: create the child inside this pid namespace */
    int join_timens_fd;             /* >= 0: create the child inside this time namespace */
    const char *time_offsets;       /* non-NULL: new time ns with these /proc timens_offsets lines */
    char *const *argv;
    char *const *envp;
    const struct pyrunc_op *ops;
    int n_ops;
};

/* Clone the child described by `spawn` and return its pid, or -errno. With `report` set
 * (vfork mode) this returns once the child has exec'd or failed; a failure is in *report. */
int pyrunc_spawn(const struct pyrunc_spawn *spawn);
