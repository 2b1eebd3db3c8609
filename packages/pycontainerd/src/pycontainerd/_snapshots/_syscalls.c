/*
 * pycontainerd._snapshots._syscalls: mount(2), umount2(2), syncfs(2) and the mount id of statx(2),
 * which Python's os lacks.
 *
 * Why C: these used to go through ctypes, and importing ctypes (libffi, struct, its C types) is a
 * cost of every pyctr command that mounts a snapshot - pyctr run among them - that this module does
 * not have (measured: ARCHITECTURE.md, "Start-up"). The module only makes the calls; mount.py does
 * the rest (options, flags, read-only binds, undoing a partial mount). Each call releases the GIL
 * and raises OSError with the errno and the path.
 *
 * The mount id is how removal.py tells that a directory is a mount point: a bind mount within one
 * filesystem has the same st_dev as its parent, so os.stat cannot tell, and statx is not in os.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

/* Accepts None or bytes; *out is NULL for None. */
static int optional_bytes(PyObject *obj, const char **out, const char *what)
{
    if (obj == Py_None) {
        *out = NULL;
        return 0;
    }
    if (!PyBytes_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes or None, not %.100s", what, Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = PyBytes_AS_STRING(obj);
    return 0;
}

PyDoc_STRVAR(mount_doc,
"mount(source, target, fstype, flags, data)\n--\n\n"
"mount(2): ``target`` bytes; ``source``, ``fstype`` and ``data`` bytes or None; ``flags`` the MS_* bits.");

static PyObject *sys_mount(PyObject *self, PyObject *args)
{
    PyObject *source_obj, *fstype_obj, *data_obj;
    const char *source, *fstype, *data, *target;
    Py_ssize_t target_len;
    unsigned long flags;
    int rc;

    (void)self;
    if (!PyArg_ParseTuple(args, "Oy#OkO:mount", &source_obj, &target, &target_len, &fstype_obj, &flags,
                          &data_obj))
        return NULL;
    if (optional_bytes(source_obj, &source, "source") < 0 || optional_bytes(fstype_obj, &fstype, "fstype") < 0
        || optional_bytes(data_obj, &data, "data") < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = mount(source, target, fstype, flags, data);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, target);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(umount2_doc, "umount2(target, flags)\n--\n\numount2(2) of the bytes path ``target``.");

static PyObject *sys_umount2(PyObject *self, PyObject *args)
{
    const char *target;
    Py_ssize_t target_len;
    int flags, rc;

    (void)self;
    if (!PyArg_ParseTuple(args, "y#i:umount2", &target, &target_len, &flags))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = umount2(target, flags);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, target);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(syncfs_doc, "syncfs(fd)\n--\n\nsyncfs(2): flush the filesystem holding the open file ``fd``.");

static PyObject *sys_syncfs(PyObject *self, PyObject *args)
{
    int fd, rc;

    (void)self;
    if (!PyArg_ParseTuple(args, "i:syncfs", &fd))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = syncfs(fd);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(mount_id_doc,
"mount_id(fd)\n--\n\n"
"The id of the mount the open file ``fd`` is on (statx(2)'s STATX_MNT_ID, as /proc/self/mountinfo\n"
"numbers mounts).");

static PyObject *sys_mount_id(PyObject *self, PyObject *args)
{
    struct statx stx;
    int fd, rc;

    (void)self;
    if (!PyArg_ParseTuple(args, "i:mount_id", &fd))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (!(stx.stx_mask & STATX_MNT_ID)) {
        /* Linux before 5.8: refuse rather than guess (a wrong answer would delete through a mount). */
        PyObject *value = Py_BuildValue("(is)", ENOSYS, "statx gave no mount id: Linux 5.8 or later is needed");
        if (value != NULL) {
            PyErr_SetObject(PyExc_OSError, value);
            Py_DECREF(value);
        }
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(stx.stx_mnt_id);
}

static PyMethodDef methods[] = {
    {"mount", sys_mount, METH_VARARGS, mount_doc},
    {"umount2", sys_umount2, METH_VARARGS, umount2_doc},
    {"syncfs", sys_syncfs, METH_VARARGS, syncfs_doc},
    {"mount_id", sys_mount_id, METH_VARARGS, mount_id_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pycontainerd._snapshots._syscalls",
    .m_doc = "mount(2), umount2(2), syncfs(2) and mount ids for pycontainerd's snapshots.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__syscalls(void)
{
    return PyModule_Create(&module);
}
