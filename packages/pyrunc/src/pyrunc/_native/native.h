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

/* Op kinds. After each: the member of struct pyrunc_op's union that holds its arguments (none:
 * the op has none), and what it does with them. */
#define PYRUNC_OP_WAIT 1           /* recv one message from the control socket: continue */
#define PYRUNC_OP_READY 2          /* send "ready" on the control socket */
#define PYRUNC_OP_SETNS 3          /* setns: join the namespace (type nstype) opened in slot (OPEN_SOURCE) */
#define PYRUNC_OP_UNSHARE 4        /* unshare: unshare(flags) */
#define PYRUNC_OP_OPEN_ROOT 5      /* path: open the directory as the root of later in-root paths */
#define PYRUNC_OP_MOUNT 6          /* mount: mount(source, or the file in source_slot, on target) */
#define PYRUNC_OP_MKDIRS 7         /* mkdirs: mkdir -p of path inside the root with mode */
#define PYRUNC_OP_MKFILE 8         /* path: create an empty file inside the root (parents made) */
#define PYRUNC_OP_MKNOD 9          /* mknod: mknod inside the root, then chown */
#define PYRUNC_OP_SYMLINK 10       /* symlink: a symlink to target at path inside the root, if absent */
#define PYRUNC_OP_PIVOT_ROOT 11    /* path: pivot_root into the rootfs and detach the old root */
#define PYRUNC_OP_MOVE_ROOT 12     /* path: --no-pivot: MS_MOVE the rootfs onto / then chroot */
#define PYRUNC_OP_SETHOSTNAME 13   /* name: sethostname */
#define PYRUNC_OP_SETDOMAINNAME 14 /* name: setdomainname */
#define PYRUNC_OP_WRITE_FILE 15    /* write: write text into the existing file path */
#define PYRUNC_OP_RLIMIT 16        /* rlimit: prlimit(0, resource, soft, hard) */
#define PYRUNC_OP_PRCTL 17         /* prctl: prctl(option, arg2, arg3) */
#define PYRUNC_OP_CAPBSET 18       /* capbset: drop every bounding cap up to last_cap not in keep */
#define PYRUNC_OP_SETGROUPS 19     /* setgroups: setgroups(n_gids, gids) */
#define PYRUNC_OP_SETRESGID 20     /* setresid: setresgid(id, id, id) */
#define PYRUNC_OP_SETRESUID 21     /* setresid: setresuid(id, id, id) */
#define PYRUNC_OP_CAPSET 22        /* capset: capset of the effective, permitted, inheritable masks */
#define PYRUNC_OP_UMASK 23         /* umask: umask(mask) */
#define PYRUNC_OP_CHDIR 24         /* path: chdir and check the result is inside the root */
#define PYRUNC_OP_MASK 25          /* path: /dev/null over a file, read-only tmpfs over a directory */
#define PYRUNC_OP_READONLY 26      /* path: bind onto itself read-only, keeping its other flags */
#define PYRUNC_OP_REMOUNT_RO 27    /* path: remount the mount there read-only, keeping its other flags */
#define PYRUNC_OP_LOOPBACK_UP 28   /* set the "lo" interface up */
#define PYRUNC_OP_FIND_EXEC 29     /* resolve argv[0] with PATH from envp; kept for EXEC */
#define PYRUNC_OP_FIFO 30          /* fifo: open /proc/self/fd/<fd> for writing (blocks until start) */
#define PYRUNC_OP_CLOEXEC_FROM 31  /* cloexec_from: mark every fd from first on close-on-exec */
#define PYRUNC_OP_EXEC 32          /* execve(found path, argv, envp) */
#define PYRUNC_OP_SET_DUMPABLE 33  /* dumpable: prctl(PR_SET_DUMPABLE, value) */
#define PYRUNC_OP_DUP2 34          /* dup2: dup2(old_fd, new_fd): hand a pipe to the child as stdio */
#define PYRUNC_OP_JOIN_KEYRING 35  /* name: join a new session keyring of that name */
#define PYRUNC_OP_SYNC 36          /* send (-3, 0) ("run your hooks") and wait for one message */
#define PYRUNC_OP_HOOK 37          /* hook: run it with the state on stdin, within timeout seconds */
#define PYRUNC_OP_SECCOMP 38       /* seccomp: seccomp(SET_MODE_FILTER, flags, the BPF program) */
#define PYRUNC_OP_CONSOLE 39       /* console: a new pty, its master sent on socket, the slave our tty */
#define PYRUNC_OP_OPEN_SOURCE 40   /* open_source: open path (not in root) into slot, before the init
                                      joins or becomes root of a user namespace */
#define PYRUNC_OP_BIND_REMOUNT 41  /* bind_remount: remount the bind mount at path with flags, plus the
                                      flags the kernel locked on it but those in cleared */
#define PYRUNC_OP_FORK 42          /* clone3(CLONE_PARENT): the new process (first in the pid namespace
                                      unshared before) goes on with the ops; the old one sends
                                      (-4, new pid) on the control socket and exits */
#define PYRUNC_OP_SYSCTL 43        /* write: text into /proc/sys/<path>, resolved beneath /proc/sys,
                                      which must be a procfs, following no symlink, crossing no mount */
#define PYRUNC_OP_MKTARGET 44      /* mktarget: create path inside the root as the target of a bind of
                                      source: a directory (mode 0755) if source is one, else a file */

/* The slots of files the child opens early (PYRUNC_OP_OPEN_SOURCE). */
#define PYRUNC_MAX_SOURCES 1024

/* A path marked in_root is resolved inside the container's root (RESOLVE_IN_ROOT), else as the
 * init sees it. Strings are NUL-terminated; a slot is an index into the OPEN_SOURCE files. */
struct pyrunc_op_path {
    const char *path;
    int in_root;
};
struct pyrunc_op_setns {
    int slot;
    int nstype; /* CLONE_NEW* */
};
struct pyrunc_op_unshare {
    int flags; /* CLONE_NEW* */
};
struct pyrunc_op_mount {
    const char *source; /* NULL for a remount or a propagation change */
    int source_slot;    /* >= 0: bind from the file opened in that slot instead of source */
    const char *target;
    int in_root;
    const char *fstype;
    unsigned long flags;
    const char *data;
    int tmpfs; /* make a missing target, give the new mount the mode of what it covers */
};
struct pyrunc_op_mkdirs {
    const char *path;
    unsigned int mode;
};
struct pyrunc_op_mknod {
    const char *path;
    unsigned int mode; /* S_IFCHR, S_IFBLK or S_IFIFO and the permissions */
    unsigned long long dev;
    unsigned int uid;
    unsigned int gid;
};
struct pyrunc_op_symlink {
    const char *target;
    const char *path;
};
struct pyrunc_op_name {
    const char *name;
};
struct pyrunc_op_write {
    const char *path;
    const char *text;
};
struct pyrunc_op_rlimit {
    int resource;
    unsigned long long soft;
    unsigned long long hard;
};
struct pyrunc_op_prctl {
    int option;
    unsigned long arg2;
    unsigned long arg3;
};
struct pyrunc_op_capbset {
    unsigned long long keep; /* bit n: keep capability n */
    int last_cap;
};
struct pyrunc_op_setgroups {
    const unsigned int *gids;
    int n_gids;
};
struct pyrunc_op_setresid {
    unsigned int id;
};
struct pyrunc_op_capset {
    unsigned long long effective;
    unsigned long long permitted;
    unsigned long long inheritable;
};
struct pyrunc_op_umask {
    unsigned int mask;
};
struct pyrunc_op_fifo {
    int fd; /* the exec fifo, opened O_PATH by the runtime */
};
struct pyrunc_op_cloexec_from {
    int first;
};
struct pyrunc_op_dumpable {
    int value;
};
struct pyrunc_op_dup2 {
    int old_fd;
    int new_fd;
};
struct pyrunc_op_hook {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *state_head; /* the state JSON on stdin: state_head, the host pid, state_tail */
    const char *state_tail;
    long timeout; /* seconds, 0: none */
};
struct pyrunc_op_seccomp {
    const char *program; /* struct sock_filter[], length bytes */
    long length;
    unsigned int flags;
};
struct pyrunc_op_console {
    int socket; /* a connected unix socket */
    unsigned int rows; /* the window size, when both are set */
    unsigned int cols;
};
struct pyrunc_op_open_source {
    const char *path;
    int flags; /* open(2) flags, O_CLOEXEC added */
    int slot;
};
struct pyrunc_op_bind_remount {
    const char *path;
    int in_root;
    unsigned long flags;
    unsigned long cleared; /* locked flags not to keep */
};
struct pyrunc_op_mktarget {
    const char *source; /* not in root, symlinks followed as the bind follows them */
    const char *path;
};

struct pyrunc_op {
    int kind;
    union {
        struct pyrunc_op_path path;
        struct pyrunc_op_setns setns;
        struct pyrunc_op_unshare unshare;
        struct pyrunc_op_mount mount;
        struct pyrunc_op_mkdirs mkdirs;
        struct pyrunc_op_mknod mknod;
        struct pyrunc_op_symlink symlink;
        struct pyrunc_op_name name;
        struct pyrunc_op_write write;
        struct pyrunc_op_rlimit rlimit;
        struct pyrunc_op_prctl prctl;
        struct pyrunc_op_capbset capbset;
        struct pyrunc_op_setgroups setgroups;
        struct pyrunc_op_setresid setresid;
        struct pyrunc_op_capset capset;
        struct pyrunc_op_umask umask;
        struct pyrunc_op_fifo fifo;
        struct pyrunc_op_cloexec_from cloexec_from;
        struct pyrunc_op_dumpable dumpable;
        struct pyrunc_op_dup2 dup2;
        struct pyrunc_op_hook hook;
        struct pyrunc_op_seccomp seccomp;
        struct pyrunc_op_console console;
        struct pyrunc_op_open_source open_source;
        struct pyrunc_op_bind_remount bind_remount;
        struct pyrunc_op_mktarget mktarget;
    };
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
