/* libseccomp behind the small API of seccomp.h: used by the parent to build a container's
 * seccomp filter and export it as a BPF program. Nothing here runs in the container's child. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pyrunc_seccomp.h"

/* The numbers Python uses must be libseccomp's (and so the kernel's). */
_Static_assert(PYRUNC_SCMP_ACT_KILL_PROCESS == SCMP_ACT_KILL_PROCESS, "KILL_PROCESS");
_Static_assert(PYRUNC_SCMP_ACT_KILL_THREAD == SCMP_ACT_KILL_THREAD, "KILL_THREAD");
_Static_assert(PYRUNC_SCMP_ACT_TRAP == SCMP_ACT_TRAP, "TRAP");
_Static_assert(PYRUNC_SCMP_ACT_ERRNO == SCMP_ACT_ERRNO(0), "ERRNO");
_Static_assert(PYRUNC_SCMP_ACT_TRACE == SCMP_ACT_TRACE(0), "TRACE");
_Static_assert(PYRUNC_SCMP_ACT_LOG == SCMP_ACT_LOG, "LOG");
_Static_assert(PYRUNC_SCMP_ACT_ALLOW == SCMP_ACT_ALLOW, "ALLOW");
_Static_assert(PYRUNC_SCMP_CMP_NE == SCMP_CMP_NE && PYRUNC_SCMP_CMP_LT == SCMP_CMP_LT &&
                   PYRUNC_SCMP_CMP_LE == SCMP_CMP_LE && PYRUNC_SCMP_CMP_EQ == SCMP_CMP_EQ &&
                   PYRUNC_SCMP_CMP_GE == SCMP_CMP_GE && PYRUNC_SCMP_CMP_GT == SCMP_CMP_GT &&
                   PYRUNC_SCMP_CMP_MASKED_EQ == SCMP_CMP_MASKED_EQ,
               "scmp_compare");
_Static_assert(PYRUNC_SCMP_UNKNOWN_SYSCALL == __NR_SCMP_ERROR, "__NR_SCMP_ERROR");

#define MAX_CMPS 6

void *pyrunc_seccomp_new(unsigned int default_action) { return seccomp_init(default_action); }

void pyrunc_seccomp_release(void *filter) {
    if (filter) seccomp_release(filter);
}

int pyrunc_seccomp_arch_add(void *filter, const char *arch) {
    uint32_t token = seccomp_arch_resolve_name(arch);
    if (token == 0) return -EINVAL;
    int rc = seccomp_arch_add(filter, token);
    return rc == -EEXIST ? 0 : rc;
}

unsigned int pyrunc_seccomp_arch_token(const char *arch) { return seccomp_arch_resolve_name(arch); }

int pyrunc_seccomp_syscall(const char *name) { return seccomp_syscall_resolve_name(name); }

int pyrunc_seccomp_syscall_arch(const char *arch, const char *name) {
    uint32_t token = seccomp_arch_resolve_name(arch);
    return token ? seccomp_syscall_resolve_name_arch(token, name) : __NR_SCMP_ERROR;
}

int pyrunc_seccomp_rule_add(void *filter, unsigned int action, int syscall, unsigned int n,
                            const struct pyrunc_seccomp_cmp *cmps) {
    struct scmp_arg_cmp args[MAX_CMPS];
    if (n > MAX_CMPS) return -E2BIG;
    for (unsigned int i = 0; i < n; i++) {
        args[i].arg = cmps[i].arg;
        args[i].op = (enum scmp_compare)cmps[i].op;
        args[i].datum_a = cmps[i].datum_a;
        args[i].datum_b = cmps[i].datum_b;
    }
    return seccomp_rule_add_array(filter, action, syscall, n, n ? args : NULL);
}

int pyrunc_seccomp_optimize(void *filter, int level) {
    return seccomp_attr_set(filter, SCMP_FLTATR_CTL_OPTIMIZE, (uint32_t)level);
}

long pyrunc_seccomp_export(void *filter, char *buf, unsigned long size) {
    /* libseccomp 2.5 exports to an fd only: a memfd holds the program, then we read it back. */
    int fd = (int)syscall(SYS_memfd_create, "pyrunc-seccomp", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    long rc = seccomp_export_bpf(filter, fd);
    struct stat st;
    if (rc == 0 && fstat(fd, &st) < 0) rc = -errno;
    if (rc == 0 && (unsigned long)st.st_size > size) rc = -E2BIG;
    unsigned long done = 0;
    while (rc == 0 && done < (unsigned long)st.st_size) {
        ssize_t got = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) rc = got < 0 ? -errno : -EIO;
        else done += (unsigned long)got;
    }
    close(fd);
    return rc < 0 ? rc : (long)done;
}

int pyrunc_seccomp_flag_supported(unsigned int flag) {
    /* With a NULL program the kernel checks the flags first: EFAULT means they were accepted. */
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, NULL) < 0 && errno == EFAULT;
}

const char *pyrunc_seccomp_version(void) {
    static _Thread_local char text[48];
    const struct scmp_version *v = seccomp_version();
    if (v == NULL) return "unknown";
    snprintf(text, sizeof text, "%u.%u.%u", v->major, v->minor, v->micro);
    return text;
}
