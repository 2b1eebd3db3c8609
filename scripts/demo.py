"""The main job of the project, end to end: pyrunc runs a busybox container in its own namespaces.

Builds a busybox OCI bundle offline in a temporary directory (pyrunc.testing.make_busybox_bundle),
runs it with the installed ``pyrunc`` console script (``pyrunc --root <tmp> run --bundle <tmp> <id>``),
lets the container show what it can see (its hostname, that it is pid 1, its few processes, its small
mount table, its network links), removes the temporary directory and exits with the container's exit
code. Run as root, through ``sudo scripts/demo``; ``--runtime /usr/sbin/runc`` runs the same bundle
with runc for comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from pyrunc.testing import make_busybox_bundle

SCRIPT = "; ".join(
    [
        'echo "hello from $(hostname), pid $$ in its own namespaces"',
        'echo "  its root: $(ls / | tr "\\n" " ")"',
        'echo "  its $(wc -l < /proc/self/mountinfo) mounts: '
        '$(cut -d" " -f5 /proc/self/mountinfo | tr "\\n" " ")"',
        'echo "  its network links: $(ls /sys/class/net | tr "\\n" " ")"',
        'echo "  its user: $(id)"',
        'echo "  the processes it can see:"',
        "ps -o pid,user,comm",
    ]
)


def _default_runtime() -> Path:
    return Path(sys.executable).parent / "pyrunc"


def _exit_code(returncode: int) -> int:
    # A runtime killed by a signal shows as -N; a shell would say 128+N.
    return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--runtime",
        type=Path,
        default=_default_runtime(),
        help="the OCI runtime to run (default: the pyrunc console script next to this Python)",
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before giving up (default 60)")
    options = parser.parse_args(argv)

    runtime: Path = options.runtime
    if os.geteuid() != 0:
        print("demo: containers need root: run sudo scripts/demo", file=sys.stderr)
        return 1
    if not (runtime.is_file() and os.access(runtime, os.X_OK)):
        print(
            f"demo: {runtime} is not installed: pip install ./packages/pyrunc (scripts/demo does it)",
            file=sys.stderr,
        )
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="pyrunc-demo-"))
    state = workdir / "state"
    container_id = f"pyrunc-demo-{os.getpid()}"
    try:
        bundle = make_busybox_bundle(workdir / "bundle", ["sh", "-c", SCRIPT], hostname="pyrunc-demo")
        with open("/proc/self/mountinfo") as f:
            host_mounts = sum(1 for _ in f)
        command = [str(runtime), "--root", str(state), "run", "--bundle", str(bundle), container_id]
        print(f"$ {runtime.name} --root {state} run --bundle {bundle} {container_id}")
        print(f"(the host: hostname {os.uname().nodename}, {host_mounts} mounts)", flush=True)
        try:
            returncode = subprocess.run(command, stdin=subprocess.DEVNULL, timeout=options.timeout).returncode
        except subprocess.TimeoutExpired:
            print(f"demo: the container did not finish in {options.timeout:g} s", file=sys.stderr)
            returncode = -signal.SIGKILL
        code = _exit_code(returncode)
        print(f"container exited with code {code}")
        return code
    finally:
        if (state / container_id).exists():
            subprocess.run(
                [str(runtime), "--root", str(state), "delete", "--force", container_id],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            print(f"demo: could not remove {workdir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
