# Types of the compiled cffi module (built from native.h by build.py).
from typing import Any

class _Lib:
    def pyrunc_spawn(self, spawn: Any, /) -> int: ...

ffi: Any
lib: _Lib
