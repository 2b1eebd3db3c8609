/* pyrunc_seccomp.h: building a container's seccomp filter with libseccomp, a thin wrapper for
 * pyrunc/_seccomp.py (implemented in seccomp.c).
 *
 * The filter is built and compiled to a classic BPF program in the PARENT; the child only hands
 * the finished program to seccomp(2) (PYRUNC_OP_SECCOMP in native.h). The child must never call
 * libseccomp: it may share the parent's memory (vfork mode) and must not allocate.
 *
 * A filter is an opaque handle (libseccomp's scmp_filter_ctx) made by pyrunc_seccomp_new() and
 * freed by pyrunc_seccomp_release(). Functions returning int return 0 (or a documented
 * non-negative value) on success and a negative errno value on failure.
 *
 * Like native.h this header is read by the C compiler and by cffi's cdef parser, so it holds only
 * plain declarations and integer #defines (libseccomp's own types stay in seccomp.c).
 */

/* Filter actions: libseccomp's SCMP_ACT_* values, which are the kernel's SECCOMP_RET_* values
 * (seccomp.c checks that they agree). ERRNO and TRACE carry a 16-bit datum in the low bits. */
#define PYRUNC_SCMP_ACT_KILL_PROCESS 0x80000000
#define PYRUNC_SCMP_ACT_KILL_THREAD 0x00000000
#define PYRUNC_SCMP_ACT_TRAP 0x00030000
#define PYRUNC_SCMP_ACT_ERRNO 0x00050000
#define PYRUNC_SCMP_ACT_TRACE 0x7ff00000
#define PYRUNC_SCMP_ACT_LOG 0x7ffc0000
#define PYRUNC_SCMP_ACT_ALLOW 0x7fff0000

/* Argument comparison operators: libseccomp's enum scmp_compare. */
#define PYRUNC_SCMP_CMP_NE 1
#define PYRUNC_SCMP_CMP_LT 2
#define PYRUNC_SCMP_CMP_LE 3
#define PYRUNC_SCMP_CMP_EQ 4
#define PYRUNC_SCMP_CMP_GE 5
#define PYRUNC_SCMP_CMP_GT 6
#define PYRUNC_SCMP_CMP_MASKED_EQ 7

/* What pyrunc_seccomp_syscall() returns for a name libseccomp does not know (__NR_SCMP_ERROR). */
#define PYRUNC_SCMP_UNKNOWN_SYSCALL -1

/* One argument comparison of a rule (libseccomp's struct scmp_arg_cmp). For MASKED_EQ, datum_a
 * is the mask and datum_b the value the masked argument must equal. */
struct pyrunc_seccomp_cmp {
    unsigned int arg;            /* argument index, 0 to 5 */
    int op;                      /* PYRUNC_SCMP_CMP_* */
    unsigned long long datum_a;  /* the spec's "value" */
    unsigned long long datum_b;  /* the spec's "valueTwo" */
};

/* A new filter for the native architecture with `default_action` (a PYRUNC_SCMP_ACT_* value,
 * plus the datum for ERRNO/TRACE), or NULL (bad action, or out of memory). */
void *pyrunc_seccomp_new(unsigned int default_action);

/* Free a filter made by pyrunc_seccomp_new(). NULL is ignored. */
void pyrunc_seccomp_release(void *filter);

/* Add the architecture named `arch` in libseccomp's spelling ("x86_64", "x86", "x32",
 * "aarch64", ...). -EINVAL: libseccomp does not know the name; an architecture the filter
 * already has (such as the native one) is not an error. */
int pyrunc_seccomp_arch_add(void *filter, const char *arch);

/* libseccomp's token for the architecture `arch` (same spelling), 0 if it does not know it. The
 * token is the kernel's AUDIT_ARCH_* value (seccomp_data.arch), except for x32, which runs with
 * AUDIT_ARCH_X86_64 and syscall numbers that have bit 30 set. */
unsigned int pyrunc_seccomp_arch_token(const char *arch);

/* The number of syscall `name` on the native architecture: a negative pseudo-number when it
 * exists only on other architectures, PYRUNC_SCMP_UNKNOWN_SYSCALL when libseccomp does not
 * know the name at all. */
int pyrunc_seccomp_syscall(const char *name);

/* The same for the architecture `arch` (libseccomp's spelling); x32's numbers include bit 30. */
int pyrunc_seccomp_syscall_arch(const char *arch, const char *name);

/* Add a rule: `syscall` (from pyrunc_seccomp_syscall) gets `action` when all `n` comparisons
 * hold (they are ANDed; n may be 0). Rules for the same syscall are alternatives. libseccomp
 * refuses (-EACCES) a rule whose action is the filter's default action, and (-EEXIST) a rule
 * that contradicts an earlier one. */
int pyrunc_seccomp_rule_add(void *filter, unsigned int action, int syscall, unsigned int n,
                            const struct pyrunc_seccomp_cmp *cmps);

/* libseccomp's optimization level: 1 (a linear list, the default) or 2 (a binary tree). */
int pyrunc_seccomp_optimize(void *filter, int level);

/* Compile the filter and copy the BPF program (an array of struct sock_filter, 8 bytes each) into
 * `buf`. Returns its length in bytes; -E2BIG when it does not fit in `size` bytes. */
long pyrunc_seccomp_export(void *filter, char *buf, unsigned long size);

/* 1 if the running kernel accepts the seccomp(2) filter flag `flag` (SECCOMP_FILTER_FLAG_*),
 * else 0. Installs nothing. */
int pyrunc_seccomp_flag_supported(unsigned int flag);

/* The version of the libseccomp loaded at run time (seccomp_version(), not the headers pyrunc was
 * built with), as "major.minor.micro". The compiled BPF of a profile depends on it (syscall tables,
 * code generation), so it is part of the key of pyrunc's cache of compiled filters. The string is
 * the calling thread's, valid until its next call. */
const char *pyrunc_seccomp_version(void);
