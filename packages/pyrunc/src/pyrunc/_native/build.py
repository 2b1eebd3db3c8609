"""cffi build script (API mode): compiles native.c and seccomp.c into ``pyrunc._native._lib``.

The cdefs are native.h and pyrunc_seccomp.h themselves, so the C compiler and cffi read the same
declarations. seccomp.c links libseccomp (used by the parent only, to build seccomp filters); its
header is not called seccomp.h because -I of this directory would then hide libseccomp's.
"""

import os

from cffi import FFI

# setuptools wants source paths relative to the project directory (its working directory).
_here = os.path.relpath(os.path.dirname(os.path.abspath(__file__)))
_header = ""
for _name in ("native.h", "pyrunc_seccomp.h"):
    with open(os.path.join(_here, _name)) as _f:
        _header += _f.read()

ffibuilder = FFI()
ffibuilder.cdef(_header)
ffibuilder.set_source(
    "pyrunc._native._lib",
    '#include "native.h"\n#include "pyrunc_seccomp.h"',
    sources=[os.path.join(_here, "native.c"), os.path.join(_here, "seccomp.c")],
    libraries=["seccomp"],
    include_dirs=[_here],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-std=gnu11"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
