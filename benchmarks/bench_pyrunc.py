"""pyrunc against runc, side by side, on a busybox bundle that runs ``true``.

For each of N iterations (default 30) both runtimes run, interleaved (the one going first alternates
from one iteration to the next), each with its own ``--root`` in a temporary directory:

- ``run``: ``<rt> run --bundle B <id>``, the whole life of a container;
- ``create``, ``start``, ``delete``: timed one by one; between ``start`` and ``delete`` the container
  is waited for by polling ``<rt> state <id>``, outside the timing.

Then, when ``pyrunc.run`` exists, ``api_spawn`` and ``api_spawn_bare``: the median of
``pyrunc.run(["true"], rootfs=...)`` in this (warm) interpreter with a memory and a pids limit, and
without limits (no cgroup), compared with runc's ``run``.

Prints the median and p90 (nearest rank) of each operation in milliseconds and the ratio of the
medians, pyrunc/runc. A runtime that fails an operation gets that row reported as failed, with its
error, and is not asked to do it again; the other rows go on. Every container and temporary
directory is removed at the end, also on error or Ctrl-C. Run as root: ``nox -s bench``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pyrunc.testing import make_busybox_bundle

if TYPE_CHECKING:
    from types import FrameType
    from typing import IO

OPERATIONS = ("run", "create", "start", "delete")
COMMAND_TIMEOUT = 30.0  # seconds for one runtime command
EXIT_TIMEOUT = 10.0  # seconds for a started `true` to be seen stopped


def run_exact(
    argv: list[str], *, stdout: IO[bytes], timeout: float, env: dict[str, str] | None = None
) -> tuple[int, float]:
    """Run ``argv`` (stdout and stderr to ``stdout``); return (exit status, wall time in ms).

    Waits on a pidfd rather than with ``subprocess.run(timeout=...)``, whose wait polls with
    sleeps that grow to 50 ms: that quantized every short operation into steps of ~16-32 ms.
    """
    start = time.perf_counter_ns()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stdout, env=env)
    pidfd = os.pidfd_open(proc.pid)
    try:
        if not select.select([pidfd], [], [], timeout)[0]:
            proc.kill()
            proc.wait()
            raise subprocess.TimeoutExpired(argv, timeout)
        returncode = proc.wait()
    finally:
        os.close(pidfd)
    return returncode, (time.perf_counter_ns() - start) / 1e6


class OperationFailed(Exception):
    """One runtime command failed; the message says which and why."""


class Runtime:
    """One OCI runtime binary with its private --root, and what was measured with it."""

    def __init__(self, name: str, binary: Path, root: Path, log: Path) -> None:
        self.name = name
        self.binary = binary
        self.root = root
        self.log = log
        self.samples: dict[str, list[float]] = {op: [] for op in OPERATIONS}
        self.failures: dict[str, str] = {}  # operation -> first error; not tried again
        self.created: set[str] = set()  # container ids that may still exist

    def command(self, *args: str) -> list[str]:
        return [str(self.binary), "--root", str(self.root), *args]

    def timed(self, *args: str) -> float:
        """Run one command; return its wall time in ms or raise OperationFailed."""
        # The container inherits stdout/stderr: files, not pipes, or `create` would never see EOF.
        with self.log.open("w+b") as log:
            try:
                returncode, elapsed = run_exact(self.command(*args), stdout=log, timeout=COMMAND_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise OperationFailed(f"{args[0]} did not return within {COMMAND_TIMEOUT:g} s") from None
            except OSError as exc:
                raise OperationFailed(f"cannot execute {self.binary}: {exc}") from None
            if returncode != 0:
                log.seek(0)
                output = log.read().decode(errors="replace").strip().splitlines()
                detail = output[-1] if output else "no output"
                raise OperationFailed(f"{args[0]} exited with {returncode}: {detail}")
        return elapsed

    def status(self, container_id: str) -> str:
        result = subprocess.run(
            self.command("state", container_id),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise OperationFailed(f"state exited with {result.returncode}: {result.stderr.strip()}")
        try:
            return str(json.loads(result.stdout)["status"])
        except (ValueError, KeyError, TypeError):
            raise OperationFailed(f"state printed no status: {result.stdout[:200]!r}") from None

    def wait_stopped(self, container_id: str) -> None:
        deadline = time.monotonic() + EXIT_TIMEOUT
        while self.status(container_id) != "stopped":
            if time.monotonic() > deadline:
                raise OperationFailed(f"container did not stop within {EXIT_TIMEOUT:g} s of start")
            time.sleep(0.002)

    def iteration(self, bundle: Path, index: int) -> None:
        """One `run`, then one create -> start -> (wait for exit) -> delete; each op measured apart."""
        if "run" not in self.failures:
            run_id = f"bench-{os.getpid()}-{index}-run"
            self.created.add(run_id)
            try:
                self.samples["run"].append(self.timed("run", "--bundle", str(bundle), run_id))
                self.created.discard(run_id)  # `run` deletes what it created
            except OperationFailed as exc:
                self.failures["run"] = str(exc)
                self.force_delete(run_id)

        chain = ("create", "start", "delete")
        if any(op in self.failures for op in chain):
            return
        life_id = f"bench-{os.getpid()}-{index}-life"
        self.created.add(life_id)
        op = "create"
        try:
            self.samples["create"].append(self.timed("create", "--bundle", str(bundle), life_id))
            op = "start"
            self.samples["start"].append(self.timed("start", life_id))
            op = "delete"
            try:
                self.wait_stopped(life_id)  # not timed
            except OperationFailed as exc:
                raise OperationFailed(f"waiting for the container to stop: {exc}") from None
            self.samples["delete"].append(self.timed("delete", life_id))
            self.created.discard(life_id)
        except OperationFailed as exc:
            self.failures[op] = str(exc)
            for later in chain[chain.index(op) + 1 :]:
                self.failures.setdefault(later, f"not measured: {op} failed")
            self.force_delete(life_id)

    def force_delete(self, container_id: str) -> None:
        try:
            subprocess.run(
                self.command("delete", "--force", container_id),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            print(f"warning: {self.name} could not delete container {container_id}", file=sys.stderr)

    def cleanup(self) -> None:
        """Force-delete every container this runtime may have left (listed or remembered)."""
        ids = set(self.created)
        try:
            listing = subprocess.run(
                self.command("list", "--quiet"),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
            ids.update(listing.stdout.split())
        except (OSError, subprocess.TimeoutExpired):
            pass
        for container_id in sorted(ids):
            self.force_delete(container_id)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


#: The rows of pyrunc.run(): name -> (its keyword arguments, what the note says of them).
API_CASES = {
    "api_spawn": ({"memory_limit": 64 << 20, "pids_limit": 32}, "memory and pids limits"),
    "api_spawn_bare": ({}, "no limits (no cgroup)"),
}


def api_spawn(rootfs: Path, iterations: int, limits: dict[str, int]) -> tuple[list[float], str]:
    """Time pyrunc.run(["true"], rootfs=..., **limits) in this interpreter, with no network;
    (samples, note if not measured)."""
    import importlib

    try:
        pyrunc = importlib.import_module("pyrunc")
    except ImportError as exc:
        return [], f"pyrunc is not importable: {exc}"
    run = getattr(pyrunc, "run", None)
    if not callable(run):
        return [], "pyrunc.run does not exist yet"
    samples: list[float] = []
    try:
        run(["true"], rootfs=str(rootfs), **limits)  # warm-up: imports, caches
        for _ in range(iterations):
            start = time.perf_counter_ns()
            run(["true"], rootfs=str(rootfs), **limits)
            samples.append((time.perf_counter_ns() - start) / 1e6)
    except Exception as exc:  # noqa: BLE001 - any failure of the API is reported as a row, not raised
        return [], f"pyrunc.run failed: {type(exc).__name__}: {exc}"
    return samples, ""


def cell(values: list[float]) -> tuple[str, str]:
    if not values:
        return "-", "-"
    return f"{statistics.median(values):.1f}", f"{percentile(values, 0.9):.1f}"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """``title``, then the table: the first column left-aligned, the numbers right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(f"\n{title}")
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def report(runtimes: list[Runtime], api: dict[str, tuple[list[float], str]], iterations: int) -> None:
    names = [rt.name for rt in runtimes]
    header = ["operation"]
    for name in names:
        header += [f"{name} median", f"{name} p90"]
    if len(runtimes) == 2:
        header.append(f"{names[1]}/{names[0]}")
    rows: list[list[str]] = []
    notes: list[str] = []
    for op in OPERATIONS:
        row = [op]
        for rt in runtimes:
            row += cell(rt.samples[op])
            if op in rt.failures:
                notes.append(f"{op}: {rt.name} failed: {rt.failures[op]}")
            elif len(rt.samples[op]) < iterations:
                notes.append(f"{op}: {rt.name} measured {len(rt.samples[op])} of {iterations} iterations")
        if len(runtimes) == 2:
            base, other = runtimes[0].samples[op], runtimes[1].samples[op]
            row.append(
                f"{statistics.median(other) / statistics.median(base):.2f}x" if base and other else "-"
            )
        rows.append(row)

    for name, (api_samples, api_note) in api.items():
        row = [name]
        for rt in runtimes:
            row += cell(api_samples) if rt.name == "pyrunc" else ("-", "-")
        if len(runtimes) == 2:
            runc_run = runtimes[0].samples["run"]
            if api_samples and runc_run:
                row.append(f"{statistics.median(api_samples) / statistics.median(runc_run):.2f}x")
            else:
                row.append("-")
        rows.append(row)
        if api_note:
            notes.append(f"{name}: skipped: {api_note}")
        else:
            notes.append(
                f"{name}: pyrunc.run() in a warm interpreter, {API_CASES[name][1]}, no network; "
                "its ratio is against runc's run"
            )

    print_table(f"{iterations} iterations, times in ms", header, rows)
    for note in notes:
        print(f"note: {note}")


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30, help="iterations per runtime (default 30)")
    parser.add_argument("--runc", type=Path, default=Path("/usr/sbin/runc"), help="the reference runtime")
    parser.add_argument(
        "--pyrunc",
        type=Path,
        default=Path(sys.executable).parent / "pyrunc",
        help="pyrunc's console script (default: next to this Python)",
    )
    parser.add_argument(
        "--only", choices=("runc", "pyrunc"), help="benchmark one runtime alone (e.g. to check the harness)"
    )
    options = parser.parse_args(argv)
    if options.iterations < 1:
        parser.error("--iterations must be at least 1")
    if os.geteuid() != 0:
        print("bench: containers need root", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)

    workdir = Path(tempfile.mkdtemp(prefix="bench-pyrunc-"))
    runtimes: list[Runtime] = []
    try:
        bundle = make_busybox_bundle(workdir / "bundle", ["true"], hostname="bench")
        for name, binary in (("runc", options.runc), ("pyrunc", options.pyrunc)):
            if options.only in (None, name):
                runtime = Runtime(name, binary, workdir / f"{name}-root", workdir / f"{name}.log")
                if not (binary.is_file() and os.access(binary, os.X_OK)):
                    for op in OPERATIONS:
                        runtime.failures[op] = f"{binary} is not installed"
                runtimes.append(runtime)

        for index in range(options.iterations):
            order = runtimes if index % 2 == 0 else runtimes[::-1]
            for runtime in order:
                runtime.iteration(bundle, index)
            if sys.stderr.isatty():
                print(f"\riteration {index + 1}/{options.iterations}", end="", file=sys.stderr, flush=True)
        if sys.stderr.isatty():
            print(file=sys.stderr)

        api: dict[str, tuple[list[float], str]] = {}
        if any(rt.name == "pyrunc" for rt in runtimes):
            for name, (limits, _) in API_CASES.items():
                api[name] = api_spawn(bundle / "rootfs", options.iterations, limits)
        report(runtimes, api, options.iterations)
        return 0
    except KeyboardInterrupt:
        print("\nbench: interrupted, cleaning up", file=sys.stderr)
        return 130
    finally:
        for runtime in runtimes:
            runtime.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            print(f"warning: could not remove {workdir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
