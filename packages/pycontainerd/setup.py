"""Builds the package's C parts: the per-container monitor, a small C program shipped inside the
package as ``pycontainerd/_monitor/pycontainerd-monitor`` from the C sources next to it (``monitor.c``
says why it is C; ``monitor.h`` is their internal header), and the extension module
``pycontainerd._snapshots._syscalls`` (mount(2) and friends; ``_syscalls.c`` says why). Metadata
lives in pyproject.toml; the wheel is platform-specific, and carries neither sources nor header."""

from __future__ import annotations

import os
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

MONITOR_DIR = os.path.join("src", "pycontainerd", "_monitor")
MONITOR_SOURCES = [
    os.path.join(MONITOR_DIR, name) for name in ("monitor.c", "output.c", "process.c", "control.c")
]
MONITOR_HEADER = os.path.join(MONITOR_DIR, "monitor.h")
MONITOR_TARGET = os.path.join("pycontainerd", "_monitor", "pycontainerd-monitor")
SYSCALLS = Extension(
    "pycontainerd._snapshots._syscalls",
    [os.path.join("src", "pycontainerd", "_snapshots", "_syscalls.c")],
    extra_compile_args=["-O2", "-Wall", "-Wextra"],
)


class BuildPyWithMonitor(build_py):
    """build_py, then compile and link the monitor into the build tree with the setuptools compiler."""

    def run(self) -> None:
        super().run()
        # setuptools' own copy of distutils (the standard library's is gone from Python 3.12).
        from distutils.ccompiler import new_compiler
        from distutils.sysconfig import customize_compiler

        compiler = new_compiler()
        customize_compiler(compiler)
        target = os.path.join(self.build_lib, MONITOR_TARGET)
        with tempfile.TemporaryDirectory() as objects_dir:
            objects = compiler.compile(
                MONITOR_SOURCES,
                output_dir=objects_dir,
                depends=[MONITOR_HEADER],
                extra_postargs=["-O2", "-Wall", "-Wextra"],
            )
            compiler.link_executable(objects, os.path.basename(target), output_dir=os.path.dirname(target))
        os.chmod(target, 0o755)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, MONITOR_TARGET)]


setup(cmdclass={"build_py": BuildPyWithMonitor}, ext_modules=[SYSCALLS])
