"""cffi build script (API mode): compiles native.c into ``pyrunc._native._lib``.

The cdefs are native.h itself, so the C compiler and cffi read the same declarations.
"""

import os

from cffi import FFI

# setuptools wants source paths relative to the project directory (its working directory).
_here = os.path.relpath(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(_here, "native.h")) as _f:
    _header = _f.read()

ffibuilder = FFI()
ffibuilder.cdef(_header)
ffibuilder.set_source(
    "pyrunc._native._lib",
    '#include "native.h"',
    sources=[os.path.join(_here, "native.c")],
    include_dirs=[_here],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-std=gnu11"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
