"""pyrunc against runc under the real engines: ``docker run --rm`` on a private dockerd, ``ctr run --rm``
on a private containerd, end to end.

The peers are tests/peers.py's (loaded from tests/, like the drop-in tests load them): a private
dockerd 20.10 on a bridge of its own with its own managed containerd and ``--add-runtime
pyrunc=<pyrunc>``, and a private containerd 1.6. The busybox image is written offline by
tests/oci_images.py and loaded with ``docker load`` (a docker-archive made by skopeo) and ``ctr images
import``: nothing contacts a registry. Three rows, each a container running ``true``:

- ``docker none``: ``docker run --rm --network none --runtime R busybox true``;
- ``docker bridge``: ``docker run --rm --runtime R busybox true`` (dockerd's bridge: a veth pair and
  the ``libnetwork-setkey`` prestart hook the runtime runs);
- ``ctr``: ``ctr run --rm --runc-binary R IMAGE ID true``.

Each row and runtime is warmed up (``--warmup``, default 3) and then run N times (``--iterations``,
default 20), interleaved: every iteration runs every row with each runtime, the one going first
alternating from one iteration to the next. Reported: median and p90 (nearest rank) in ms, the ratio
of the medians pyrunc/runc and their difference; the target is docker's ``run --rm`` through pyrunc
at most 1.15x the same through runc (a verdict is printed; a miss is not an error). A last row times
the runtime alone, outside any engine, on a verb with nothing to do (``delete --force`` of a missing
container): about its bare start-up, which containerd's shim pays on every call.

Phases (unless ``--no-phases``): each iteration also runs every row through a timing wrapper, a bash
script in the temporary directory given as the runtime (``runc-timed`` and ``pyrunc-timed`` to
dockerd, ``--runc-binary`` to ctr). It runs the real binary and appends its start and end time
(bash's ``$EPOCHREALTIME``: no process is forked to read the clock) and the arguments to a file. Put
against the benchmark's own clock around the docker/ctr command, that splits each container into its
runtime calls and the gaps between them: containerd 1.6's shim calls ``create``, ``start``,
``delete`` and ``delete --force``, so a runtime's start-up is paid four times per container. runc and
pyrunc get the same wrapper, so its cost (a bash start-up per call, ~1-2 ms, outside the verb's own
time) is the same on both sides; the end-to-end table is measured without it.

Options shared with bench_pyrunc.py (``nox -s bench`` gives both scripts its arguments):
``--iterations``, ``--runc``, ``--pyrunc``, ``--only``; ``--warmup`` and ``--no-phases`` are this
script's own: ``.nox/bench/bin/python benchmarks/bench_engines.py --warmup 5``.

Everything is undone at the end, also on error or Ctrl-C: containers, the daemons (stopped by pid),
the bridge, cgroups, temporary directories. Run as root: ``nox -s bench`` (after bench_pyrunc.py).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import math
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_pyrunc import print_table  # the same table as the runtime benchmark (same directory)

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

TESTS = Path(__file__).resolve().parent.parent / "tests"
RUNTIMES = ("runc", "pyrunc")
ROWS = ("docker none", "docker bridge", "ctr")
TARGET = 1.15  # docker run --rm through pyrunc / through runc, at most
COMMAND_TIMEOUT = 120.0  # seconds for one docker/ctr command
DOCKER_IMAGE = "busybox:latest"
CTR_IMAGE = "bench.local/busybox:latest"
#: PATH for finding the peers (Debian puts runc in /usr/sbin), as tests/peers.py does.
DAEMON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The peers' binaries; a missing one means scripts/bootstrap has not run.
BINARIES = ("dockerd", "docker", "containerd", "ctr", "containerd-shim-runc-v2", "skopeo", "bash")
#: runc's global options that take a value (the verb is the first word that is none of these).
GLOBAL_VALUE_OPTIONS = {"--root", "--log", "--log-format", "--criu", "--rootless"}
#: The runtime alone (no engine) on a no-op verb, in the end-to-end table.
STARTUP_ROW = "R delete --force MISSING"
#: The sum of a container's runtime calls, in the phase tables.
CALLS_SUM = "runtime calls (sum)"


def _load(name: str) -> Any:
    """tests/<name>.py as a module (the tests load it the same way: nothing on sys.path)."""
    from pyrunc.testing import register_module

    module_name = f"bench_engines_{name}"
    register_module(module_name, TESTS / f"{name}.py")
    return sys.modules[module_name]


# --------------------------------------------------------------------------------------------------
# The timing wrapper


@dataclass(frozen=True)
class Call:
    """One runtime invocation seen by the timing wrapper; times in microseconds since the epoch."""

    start: int
    end: int
    code: int
    verb: str

    @property
    def ms(self) -> float:
        return (self.end - self.start) / 1000


def verb_of(args: list[str]) -> str:
    """The verb of a runc command line (global options and their values skipped); a forced delete
    is ``delete --force``, to tell it from the plain one."""
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in GLOBAL_VALUE_OPTIONS
        elif arg == "delete" and {"--force", "-f", "--force=true"} & set(args[index + 1 :]):
            return "delete --force"
        else:
            return arg
    return "(none)"


class TimingWrapper:
    """A bash script that runs ``real`` with its arguments and appends one line per call to a file."""

    def __init__(self, directory: Path, name: str, real: Path, bash: str) -> None:
        self.path = directory / name
        self.calls = directory / f"{name}.calls"
        self.calls.touch()
        self.offset = 0
        self.path.write_text(
            f"#!{bash}\n"
            "# Written by benchmarks/bench_engines.py: run the runtime, then append\n"
            "# 'start_us end_us exit_code args...' (bash's clock: no fork to read it).\n"
            "start=${EPOCHREALTIME/[.,]/}\n"
            f'{shlex.quote(str(real))} "$@"\n'
            "code=$?\n"
            "end=${EPOCHREALTIME/[.,]/}\n"
            f'printf \'%s %s %s %s\\n\' "$start" "$end" "$code" "$*" >>{shlex.quote(str(self.calls))}\n'
            'exit "$code"\n'
        )
        self.path.chmod(0o755)

    def take(self) -> list[Call]:
        """The calls logged since the last take."""
        with self.calls.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self.offset += len(complete)
        calls = []
        for line in complete.decode(errors="replace").splitlines():
            start, end, code, *args = line.split()
            calls.append(Call(int(start), int(end), int(code), verb_of(args)))
        return calls


def segments(begin_us: int, finish_us: int, calls: list[Call]) -> list[tuple[str, float]] | None:
    """Split one container's end-to-end time at its runtime calls: (segment, ms) in order, from
    ``before <first verb>`` through each call and the gap to the next to ``after <last verb>``.
    None when there is no call or two calls overlap."""
    calls = sorted(calls, key=lambda call: call.start)
    if not calls:
        return None
    points = [begin_us]
    for call in calls:
        points += [call.start, call.end]
    points.append(finish_us)
    if points != sorted(points):
        return None
    names = [f"before {calls[0].verb}"]
    for index, call in enumerate(calls):
        if index:
            names.append(f"{calls[index - 1].verb} -> {call.verb}")
        names.append(call.verb)
    names.append(f"after {calls[-1].verb}")
    seen: dict[str, int] = {}
    unique = []
    for name in names:  # a verb called twice: "delete", "delete #2"
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return [(name, (points[i + 1] - points[i]) / 1000) for i, name in enumerate(unique)]


# --------------------------------------------------------------------------------------------------
# Rows and measurements


@dataclass
class Variant:
    """One row run with one runtime (``timed``: through the timing wrapper)."""

    row: str
    runtime: str
    timed: bool
    argv: Callable[[], list[str]]
    env: dict[str, str] | None
    wrapper: TimingWrapper | None = None
    samples: list[float] = field(default_factory=list)  # end to end, ms
    phases: dict[str, list[float]] = field(default_factory=dict)  # segment or verb -> ms
    verbs_seen: dict[str, int] = field(default_factory=dict)  # verb -> calls, over every container
    failed_calls: dict[str, int] = field(default_factory=dict)  # verb -> calls that exited non-zero
    sequence: tuple[str, ...] = ()  # the segments of the first container; the others must match
    unsplit: int = 0  # containers whose calls overlapped or came in another sequence
    failure: str = ""

    @property
    def label(self) -> str:
        return f"{self.runtime}-timed" if self.timed else self.runtime

    def once(self, record: bool) -> None:
        """Run the container once; record its time (and phases) when ``record``."""
        if self.failure:
            return
        argv = self.argv()
        begin_us = time.time_ns() // 1000
        start = time.perf_counter_ns()
        try:
            result = subprocess.run(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.failure = f"{shlex.join(argv)}: no answer within {COMMAND_TIMEOUT:g} s"
            if self.wrapper is not None:
                self.wrapper.take()  # not to be counted for the next container
            return
        elapsed = (time.perf_counter_ns() - start) / 1e6
        finish_us = time.time_ns() // 1000
        calls = self.wrapper.take() if self.wrapper else []
        if result.returncode != 0:
            output = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
            detail = " / ".join(line for line in output if not line.startswith("Run '"))[:500]
            self.failure = f"{shlex.join(argv)} exited with {result.returncode}: {detail}"
            return
        if not record:
            return
        self.samples.append(elapsed)
        if self.wrapper is None:
            return
        for call in calls:
            self.verbs_seen[call.verb] = self.verbs_seen.get(call.verb, 0) + 1
            if call.code != 0:
                self.failed_calls[call.verb] = self.failed_calls.get(call.verb, 0) + 1
        split = segments(begin_us, finish_us, calls)
        sequence = tuple(name for name, _ in split or ())
        if split is None or (self.sequence and sequence != self.sequence):
            self.unsplit += 1
            return
        self.sequence = sequence
        for name, ms in split:
            self.phases.setdefault(name, []).append(ms)
        self.phases.setdefault(CALLS_SUM, []).append(sum(call.ms for call in calls))


def startup_samples(binary: Path, root: Path, iterations: int, warmup: int) -> list[float]:
    """``BINARY --root ROOT delete --force MISSING``, timed, outside any engine: the shim's last call
    for every container, and a verb with nothing to do, so about the runtime's bare start-up."""
    samples = []
    argv = [str(binary), "--root", str(root), "delete", "--force", f"bench-missing-{os.getpid()}"]
    for index in range(warmup + iterations):
        start = time.perf_counter_ns()
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=30)
        if result.returncode != 0:
            return []
        if index >= warmup:
            samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


# --------------------------------------------------------------------------------------------------
# Report


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _cells(values: list[float]) -> list[str]:
    if not values:
        return ["-", "-"]
    return [f"{statistics.median(values):.1f}", f"{percentile(values, 0.9):.1f}"]


def _compare(base: list[float], other: list[float]) -> list[str]:
    if not base or not other:
        return ["-", "-"]
    a, b = statistics.median(base), statistics.median(other)
    return [f"{b / a:.2f}x" if a > 0 else "-", f"{b - a:+.1f}"]


def _header(first: str, runtimes: list[str]) -> list[str]:
    header = [first]
    for name in runtimes:
        header += [f"{name} median", f"{name} p90"]
    if len(runtimes) == 2:
        header += [f"{runtimes[1]}/{runtimes[0]}", "delta"]
    return header


def report(
    variants: dict[tuple[str, str, bool], Variant],
    startup: dict[str, list[float]],
    runtimes: list[str],
    iterations: int,
) -> None:
    """Print the end-to-end table, a phase table per row, and notes (the target's verdict among them)."""
    notes: list[str] = []
    table: list[list[str]] = []
    for row in ROWS:
        cells = [row]
        for name in runtimes:
            variant = variants[row, name, False]
            cells += _cells(variant.samples)
            if variant.failure:
                notes.append(f"{row}: {name} failed: {variant.failure}")
            elif len(variant.samples) < iterations:
                notes.append(f"{row}: {name} measured {len(variant.samples)} of {iterations} times")
        if len(runtimes) == 2:
            base, other = (variants[row, name, False].samples for name in runtimes)
            cells += _compare(base, other)
            if row.startswith("docker") and base and other:
                ratio = statistics.median(other) / statistics.median(base)
                verdict = "met" if ratio <= TARGET else "MISSED"
                notes.append(f"{row}: target pyrunc/runc <= {TARGET:.2f}x {verdict} ({ratio:.2f}x)")
        table.append(cells)
    if startup:
        cells = [STARTUP_ROW]
        for name in runtimes:
            cells += _cells(startup.get(name, []))
            if not startup.get(name):
                notes.append(f"{STARTUP_ROW}: {name} exited non-zero: not measured")
        if len(runtimes) == 2:
            cells += _compare(startup.get(runtimes[0], []), startup.get(runtimes[1], []))
        table.append(cells)
    print_table(
        f"End to end, {iterations} iterations, ms (delta: difference of the medians)",
        _header("container running `true`", runtimes),
        table,
    )

    for row in ROWS:
        timed = [variants.get((row, name, True)) for name in runtimes]
        if not all(timed):
            continue
        phased = [v for v in timed if v is not None]
        names = list(dict.fromkeys(name for variant in phased for name in variant.phases))
        table = []
        for name in names:
            cells = [name]
            for variant in phased:
                cells += _cells(variant.phases.get(name, []))
            if len(phased) == 2:
                cells += _compare(phased[0].phases.get(name, []), phased[1].phases.get(name, []))
            table.append(cells)
        cells = ["end to end (wrapped)"]
        for variant in phased:
            cells += _cells(variant.samples)
        if len(phased) == 2:
            cells += _compare(phased[0].samples, phased[1].samples)
        table.append(cells)
        print_table(f"{row}: phases through the timing wrapper, ms", _header("segment", runtimes), table)
        per_container = [
            f"{variant.runtime}: "
            + ", ".join(f"{verb} {n / len(variant.samples):.3g}" for verb, n in variant.verbs_seen.items())
            for variant in phased
            if variant.samples
        ]
        if per_container:
            notes.append(f"{row}: runtime calls per container: {'; '.join(per_container)}")
        for variant in phased:
            if variant.failure:
                notes.append(f"{row}: {variant.label} failed: {variant.failure}")
            for verb, count in sorted(variant.failed_calls.items()):
                notes.append(f"{row}: {variant.label}: `{verb}` exited non-zero {count} times")
            if variant.unsplit:
                notes.append(
                    f"{row}: {variant.label}: {variant.unsplit} containers' calls overlapped or came in"
                    " another order than the first's: left out of the phases"
                )
    if any(key[2] for key in variants):
        notes.append(
            "phases: the same bash wrapper for runc and pyrunc; a verb's time is the runtime's own (fork and"
            " exec from bash included), the wrapper's start-up falls in the gaps around it"
        )
    print()
    for note in notes:
        print(f"note: {note}")


# --------------------------------------------------------------------------------------------------
# Set-up and the loop


def _missing_binaries(runtimes: dict[str, Path]) -> list[str]:
    """What is not installed: the peers (scripts/bootstrap installs them) and the runtimes given."""
    path = f"{os.environ.get('PATH', '')}:{DAEMON_PATH}"
    missing = [
        f"{name} (run scripts/bootstrap)" for name in BINARIES if shutil.which(name, path=path) is None
    ]
    missing += [
        f"{binary} (--{name})"
        for name, binary in runtimes.items()
        if not (binary.is_file() and os.access(binary, os.X_OK))
    ]
    return missing


def _mounts_below(directory: Path) -> list[str]:
    prefix = str(directory).rstrip("/") + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].replace("\\040", " ") for line in f]
    return [point for point in points if point == str(directory) or point.startswith(prefix)]


def remove_workdir(workdir: Path) -> None:
    """Remove a benchmark's temporary directory, never through a mount point (one left is reported)."""
    if mounts := _mounts_below(workdir):
        print(f"warning: left {workdir}: mounts below it: {', '.join(mounts)}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            print(f"warning: could not remove {workdir}", file=sys.stderr)


def _ignore_interrupts() -> None:
    """From here on SIGINT and SIGTERM are ignored: the teardown under way must finish."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _load_peers() -> Any:
    """tests/peers.py, with its daemons started in a session of their own.

    A Ctrl-C in the terminal goes to the whole foreground process group: dockerd and containerd would
    shut down at once, leaving their shims and mounts, before the teardown could remove the containers.
    Only peers.py's own ``Popen`` calls (the daemons) change; ``subprocess.run`` is untouched.
    """
    peers = _load("peers")
    if not isinstance(peers.subprocess, types.SimpleNamespace):
        proxy = types.SimpleNamespace(**vars(subprocess))
        proxy.Popen = functools.partial(subprocess.Popen, start_new_session=True)
        peers.subprocess = proxy
    return peers


def _dockerd_runc(runc: Path) -> str | None:
    """None when ``runc`` is the runc dockerd finds on its PATH (its built-in ``runc`` runtime)."""
    found = shutil.which("runc", path=DAEMON_PATH)
    return None if found and Path(found).resolve() == runc.resolve() else str(runc)


def run(options: argparse.Namespace, workdir: Path) -> None:
    """Start the peers, measure, report; the peers are gone when this returns or raises."""
    oci = _load("oci_images")
    peers = _load_peers()
    runtimes = [name for name in RUNTIMES if options.only in (None, name)]
    binaries: dict[str, Path] = {"runc": options.runc.absolute(), "pyrunc": options.pyrunc.absolute()}
    bash = shutil.which("bash") or "/bin/bash"

    image = oci.write_busybox_layout(workdir / "image" / "oci")
    docker_archive = oci.to_docker_archive(image, workdir / "image" / "busybox.docker.tar", DOCKER_IMAGE)
    oci_archive = oci.write_oci_archive(image, workdir / "image" / "busybox.oci.tar")
    wrap_dir, fifo_dir = workdir / "wrap", workdir / "fifo"
    wrap_dir.mkdir()
    fifo_dir.mkdir()
    wrappers: dict[str, TimingWrapper] = {}
    if options.phases:
        wrappers = {name: TimingWrapper(wrap_dir, name, binaries[name], bash) for name in runtimes}

    # The runtime names given to `docker run --runtime`: runc is dockerd's built-in one when it is the
    # same binary, every other one is an --add-runtime.
    docker_names = {(name, False): name for name in runtimes}
    docker_runtimes: dict[str, Path] = {}
    if "pyrunc" in runtimes:
        docker_runtimes["pyrunc"] = binaries["pyrunc"]
    if "runc" in runtimes and (other := _dockerd_runc(binaries["runc"])):
        docker_names["runc", False] = "runc-bench"
        docker_runtimes["runc-bench"] = Path(other)
    for name, wrapper in wrappers.items():
        docker_names[name, True] = f"{name}-timed"
        docker_runtimes[f"{name}-timed"] = wrapper.path

    with contextlib.ExitStack() as stack:
        print("bench: starting a private dockerd and a private containerd", file=sys.stderr)
        dockerd = stack.enter_context(peers.dockerd(workdir / "dockerd", runtimes=docker_runtimes))
        stack.callback(_ignore_interrupts)  # callbacks run last in, first out: before each teardown
        ctrd = stack.enter_context(peers.containerd(workdir / "containerd", namespace=f"bench-{os.getpid()}"))
        stack.callback(_ignore_interrupts)
        dockerd.docker("load", "--input", str(docker_archive), timeout=COMMAND_TIMEOUT)
        ctrd.ctr("images", "import", "--base-name", CTR_IMAGE.rpartition(":")[0], str(oci_archive))
        ids = itertools.count()

        def docker_argv(runtime: str, *network: str) -> Callable[[], list[str]]:
            argv = dockerd.docker_argv("run", "--rm", *network, "--runtime", runtime, DOCKER_IMAGE, "true")
            return lambda: list(argv)

        def ctr_argv(binary: Path, root: Path) -> Callable[[], list[str]]:
            def argv() -> list[str]:
                container_id = f"bench-{os.getpid()}-{next(ids)}"
                argv: list[str] = ctrd.ctr_argv(
                    *("run", "--rm", "--runc-binary", str(binary), "--runc-root", str(root)),
                    *("--fifo-dir", str(fifo_dir), CTR_IMAGE, container_id, "true"),
                )
                return argv

            return argv

        variants: dict[tuple[str, str, bool], Variant] = {}
        for name in runtimes:
            for timed in (False, True) if options.phases else (False,):
                timer = wrappers[name] if timed else None
                docker_name = docker_names[name, timed]
                binary = timer.path if timer is not None else binaries[name]
                root = ctrd.runc_root / (f"{name}-timed" if timed else name)
                for row, argv, env in (
                    ("docker none", docker_argv(docker_name, "--network", "none"), dockerd.env()),
                    ("docker bridge", docker_argv(docker_name), dockerd.env()),
                    ("ctr", ctr_argv(binary, root), None),
                ):
                    variants[row, name, timed] = Variant(row, name, timed, argv, env, timer)

        print(f"bench: warming up, {options.warmup} runs of each of {len(variants)}", file=sys.stderr)
        for _ in range(options.warmup):
            for variant in variants.values():
                variant.once(record=False)
        for index in range(options.iterations):
            for row in ROWS:
                # Even iterations: runc, pyrunc, pyrunc-timed, runc-timed; odd ones the reverse.
                plain = [variants[row, name, False] for name in runtimes]
                timed_ = [variants[row, name, True] for name in runtimes if (row, name, True) in variants]
                sequence = plain + timed_[::-1]
                for variant in sequence[::-1] if index % 2 else sequence:
                    variant.once(record=True)
            print(f"bench: iteration {index + 1}/{options.iterations}", file=sys.stderr, flush=True)

        startup = {
            name: startup_samples(
                binaries[name], workdir / f"{name}-root", options.iterations, options.warmup
            )
            for name in runtimes
        }
        report(variants, startup, runtimes, options.iterations)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="measured runs per row and runtime (20)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs of each first (3)")
    parser.add_argument("--runc", type=Path, default=Path("/usr/sbin/runc"), help="the reference runtime")
    parser.add_argument(
        "--pyrunc",
        type=Path,
        default=Path(sys.executable).parent / "pyrunc",
        help="pyrunc's console script (default: next to this Python)",
    )
    parser.add_argument("--only", choices=RUNTIMES, help="benchmark one runtime alone")
    parser.add_argument(
        "--no-phases", dest="phases", action="store_false", help="skip the runs through the timing wrapper"
    )
    options = parser.parse_args(argv)
    if options.iterations < 1 or options.warmup < 0:
        parser.error("--iterations must be at least 1 and --warmup at least 0")
    if os.geteuid() != 0:
        print("bench: the engines and containers need root", file=sys.stderr)
        return 1
    missing = _missing_binaries(
        {name: getattr(options, name) for name in RUNTIMES if options.only in (None, name)}
    )
    if missing:
        print(f"bench: not installed: {', '.join(missing)}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)

    workdir = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    try:
        run(options, workdir)
        return 0
    except KeyboardInterrupt:
        print("\nbench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except AssertionError as exc:  # peers.PeerError: a peer did not start, or left something behind
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        remove_workdir(workdir)


if __name__ == "__main__":
    sys.exit(main())
