"""The main job of the project, end to end: ``pyctr run`` runs a busybox container from an image.

Writes a busybox OCI image offline (tests/oci_images.py: Debian's busybox-static in one
deterministic layer) as an archive, imports it into a fresh pycontainerd root with
``pyctr images import``, and runs it with ``pyctr run --rm IMAGE ID sh -c …``: pycontainerd unpacks
the image into an overlayfs snapshot, generates the container's spec (Docker's default security),
starts the container's monitor, which has pyrunc create the container, and prints the container's
output. The container shows what it can see (hostname, pid, mounts, capabilities, seccomp mode,
processes). The temporary root and state are removed at the end; the exit code is the container's.
Run as root, through ``scripts/demo``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from registry import oci_images  # scripts/registry.py, beside this file

SCRIPT = "; ".join(
    [
        'echo "hello from $(hostname), pid $$ in its own namespaces"',
        'echo "  its root: $(ls / | tr "\\n" " ")"',
        'echo "  its $(wc -l < /proc/self/mountinfo) mounts: '
        '$(cut -d" " -f5 /proc/self/mountinfo | tr "\\n" " ")"',
        'echo "  its capabilities: $(grep CapEff /proc/self/status | cut -f2), seccomp mode'
        ' $(grep Seccomp: /proc/self/status | cut -f2)"',
        'echo "  its user: $(id)"',
        'echo "  the processes it can see:"',
        "ps -o pid,user,comm",
    ]
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before giving up (default 60)")
    options = parser.parse_args(argv)

    pyctr = Path(sys.executable).parent / "pyctr"
    if os.geteuid() != 0:
        print("demo: containers need root: run it as root", file=sys.stderr)
        return 1
    if not pyctr.is_file():
        print(f"demo: {pyctr} is not installed: pip install ./packages/pyrunc ./packages/pycontainerd",
              file=sys.stderr)  # fmt: skip
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="pycontainerd-demo-"))
    base = [str(pyctr), "--root", str(workdir / "root"), "--state", str(workdir / "state")]
    container_id = f"demo-{os.getpid()}"
    try:
        images = oci_images()
        archive = images.write_oci_archive(
            images.write_busybox_layout(workdir / "layout", tag="demo"), workdir / "busybox.tar"
        )
        image = "pycontainerd.demo/busybox:demo"  # the layout names it by its tag: --base-name adds the rest
        subprocess.run([*base, "images", "import", "--base-name", image.rpartition(":")[0], str(archive)],
                       check=True, timeout=options.timeout, stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"$ pyctr run --rm {image} {container_id} sh -c '…'", flush=True)
        try:
            code = subprocess.run(
                [*base, "run", "--rm", image, container_id, "sh", "-c", SCRIPT],
                stdin=subprocess.DEVNULL,
                timeout=options.timeout,
            ).returncode
        except subprocess.TimeoutExpired:
            print(f"demo: the container did not finish in {options.timeout:g} s", file=sys.stderr)
            code = 124
        print(f"container exited with code {code}")
        return code
    finally:
        subprocess.run([*base, "containers", "rm", "--force", container_id], capture_output=True, check=False)
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            print(f"demo: could not remove {workdir}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
