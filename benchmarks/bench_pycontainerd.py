"""pycontainerd against containerd on images: ``pyctr images pull`` against ``ctr images pull --plain-http``
from a docker-registry on 127.0.0.1, and ``images import`` of the same image as an OCI archive.

The image is built offline, once per run: tests/oci_images.py's busybox layer and then ``--layers``
layers of incompressible random bytes (``--size`` MB in all, gzip level 1), written as an OCI layout by
pycontainerd's test helper (packages/pycontainerd/tests/conftest.py, loaded like the tests load
tests/peers.py) and pushed with skopeo, digests unchanged, to a private docker-registry. The peers are
tests/peers.py's: that registry and a private containerd 1.6 (its own root, state and socket).

Each round runs every row with both tools, interleaved, the one going first alternating:

- ``pull``: ``pyctr --root FRESH images pull REF`` (fetch, verify, unpack into overlayfs, as ctr
  does) against ``ctr images pull --plain-http REF``, after which ctr's image is removed with
  ``--sync`` so that its next pull starts from an empty store too;
- ``import``: ``pyctr images import`` of the OCI archive against ``ctr images import --no-unpack``
  (pyctr's import does not unpack).

Both stores fsync a blob before it counts as committed, and a snapshot before its commit. Reported:
the median and p90 of the rounds in seconds, the ratio pyctr/ctr of the medians and pyctr's MB/s; and
``pyctr`` start-up alone (``images ls`` of an empty root), paid by every command, and an in-process
``Client.pull`` (the same pull without the start-up).

Where the time goes: each stage of a pull, alone, in this process and on one thread, over the same
layers: the network read (registry to memory), sha256, inflate, extraction (``apply_layer`` of the
uncompressed tars, which hashes them for the DiffID too) and a content-store commit (hash, write,
fsync, rename). A pull runs them overlapped: downloads in parallel, each layer inflated and
extracted while it downloads.

``--rounds`` (default 5), ``--size`` (MB, default 200), ``--layers`` (default 4). ``nox -s bench``
gives every benchmark the same arguments: the others' options (``--iterations``, ``--runc``,
``--pyrunc``, ``--only``, ...) are accepted here and ignored, since one round takes seconds.

Everything is undone at the end, also on error or Ctrl-C: the daemons (stopped by pid), the stores,
the temporary directory. Run as root: ``nox -s bench``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_pyrunc import percentile, print_table  # the same table as the other benchmarks

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CONFTEST = ROOT / "packages" / "pycontainerd" / "tests" / "conftest.py"
REPOSITORY = "bench/random"
COMMAND_TIMEOUT = 600.0
BINARIES = ("ctr", "containerd", "docker-registry", "skopeo")


def _load(name: str, path: Path) -> Any:
    """A helper module of the tests, loaded as they load it (nothing on sys.path)."""
    from pyrunc.testing import register_module

    register_module(name, path)
    return sys.modules[name]


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return elapsed


def _cells(values: list[float]) -> list[str]:
    return [f"{statistics.median(values):.2f}", f"{percentile(values, 0.9):.2f}"]


def _stages(ref: str, image: Any, workdir: Path, rounds: int) -> list[list[str]]:
    """Each stage of a pull alone, over the image's layers: median seconds and MB/s per stage."""
    import gzip
    import hashlib
    import io
    import zlib

    from pycontainerd import ContentStore, Resolver, apply_layer
    from pycontainerd._remotes import Descriptor

    layout = image.image.directory / "blobs" / "sha256"
    blobs = [(layout / digest.removeprefix("sha256:")).read_bytes() for digest in image.layers]
    tars = [gzip.decompress(blob) for blob in blobs]
    media_type = "application/vnd.oci.image.layer.v1.tar+gzip"
    descriptors = [Descriptor(media_type, d, len(b)) for d, b in zip(image.layers, blobs, strict=True)]
    compressed, uncompressed = sum(map(len, blobs)), sum(map(len, tars))

    def network() -> None:
        with Resolver() as resolver:
            fetcher = resolver.fetcher(ref)
            for desc in descriptors:
                with fetcher.fetch(desc, verify_digest=False) as stream:
                    while stream.read(1 << 20):
                        pass

    def sha256() -> None:
        for blob in blobs:
            hashlib.sha256(blob).digest()

    def inflate() -> None:
        for blob in blobs:
            zlib.decompressobj(wbits=31).decompress(blob)

    def extract() -> None:
        target = workdir / "extract"
        for n, tar in enumerate(tars):
            (target / str(n)).mkdir(parents=True)
            apply_layer(target / str(n), io.BytesIO(tar), compression="none", digest_blob=False)
        shutil.rmtree(target)

    def commit() -> None:
        store = ContentStore(workdir / "store")
        for desc, blob in zip(descriptors, blobs, strict=True):
            store.write_blob(f"bench-{desc.digest}", blob, desc.size, desc.digest)
        shutil.rmtree(workdir / "store")

    stages = [
        ("network read", network, compressed),
        ("sha256", sha256, compressed),
        ("inflate (zlib)", inflate, uncompressed),
        ("extraction (tar, DiffID)", extract, uncompressed),
        ("content commit (fsync)", commit, compressed),
    ]
    rows = []
    for name, stage, size in stages:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            stage()
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        rows.append([name, f"{median:.2f}", f"{size / 1e6 / median:.0f}"])
    return rows


def run(options: argparse.Namespace, workdir: Path) -> None:
    peers = _load("pyrunc_acceptance_peers", TESTS / "peers.py")  # the names conftest.py gives them
    oci_images = _load("pyrunc_acceptance_oci_images", TESTS / "oci_images.py")
    helpers = _load("bench_pycontainerd_conftest", CONFTEST)
    from pycontainerd import Client

    pyctr = str(Path(sys.executable).parent / "pyctr")
    sizes = [options.size * (1 << 20) // options.layers] * options.layers
    print(f"building the image: busybox + {options.layers} random layers of {sizes[0] >> 20} MB ...")
    image = helpers.write_layered_layout(workdir / "oci", sizes, seed=1)
    archive = oci_images.write_oci_archive(image.image, workdir / "image.oci.tar")
    megabytes = sum(path.stat().st_size for path in (workdir / "oci" / "blobs" / "sha256").iterdir()) / 1e6

    samples: dict[tuple[str, str], list[float]] = {}
    with (
        peers.registry(workdir / "registry") as registry,
        peers.containerd(workdir / "containerd", namespace="bench-pycontainerd") as ctrd,
    ):
        ref = oci_images.push_to_registry(image.image, registry.address, REPOSITORY)
        base = ref.rpartition(":")[0]  # ctr imports the archive's "latest" as REF again
        rows: dict[str, dict[str, list[str]]] = {
            "pull": {
                "pyctr": [pyctr, "--root", "{root}", "images", "pull", ref],
                "ctr": ctrd.ctr_argv("images", "pull", "--plain-http", ref),
            },
            "import": {
                "pyctr": [pyctr, "--root", "{root}", "images", "import", str(archive)],
                "ctr": ctrd.ctr_argv("images", "import", "--no-unpack", "--base-name", base, str(archive)),
            },
        }
        for round_ in range(options.rounds):
            tools = ["pyctr", "ctr"] if round_ % 2 == 0 else ["ctr", "pyctr"]
            for row, argvs in rows.items():
                for tool in tools:
                    store = workdir / f"pyctr-{row}-{round_}"
                    argv = [store.as_posix() if arg == "{root}" else arg for arg in argvs[tool]]
                    samples.setdefault((row, tool), []).append(_timed(argv))
                    if tool == "ctr":
                        ctrd.ctr("images", "remove", "--sync", ref, timeout=COMMAND_TIMEOUT)
                    else:
                        shutil.rmtree(store)  # overlay snapshots are plain directories: no mounts
            print(f"round {round_ + 1}/{options.rounds} done")
        empty = workdir / "empty"
        startup = [_timed([pyctr, "--root", str(empty), "images", "ls"]) for _ in range(options.rounds)]
        in_process = []
        for round_ in range(options.rounds):
            store = workdir / f"client-{round_}"
            start = time.perf_counter()
            with Client(store, store / "state") as client:
                client.pull(ref)
            in_process.append(time.perf_counter() - start)
            shutil.rmtree(store)
        stages = _stages(ref, image, workdir, options.rounds)

    table = []
    for row in rows:
        py, ctr = samples[(row, "pyctr")], samples[(row, "ctr")]
        ratio = statistics.median(py) / statistics.median(ctr)
        rate = megabytes / statistics.median(py)
        table.append([row, *_cells(py), *_cells(ctr), f"{ratio:.2f}", f"{rate:.0f}"])
    table.append(["pyctr start-up (images ls)", *_cells(startup), "-", "-", "-", "-"])
    table.append(
        [
            "Client.pull in process",
            *_cells(in_process),
            "-",
            "-",
            "-",
            f"{megabytes / statistics.median(in_process):.0f}",
        ]
    )
    print_table(
        f"{megabytes:.0f} MB in {options.layers + 1} layers, {options.rounds} rounds, seconds",
        ["operation", "pyctr median", "pyctr p90", "ctr median", "ctr p90", "pyctr/ctr", "pyctr MB/s"],
        table,
    )
    print_table("where the time goes: each stage alone, one thread", ["stage", "seconds", "MB/s"], stages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every row (default %(default)s)")
    parser.add_argument("--size", type=int, default=200, help="MB of random layers (default %(default)s)")
    parser.add_argument("--layers", type=int, default=4, help="random layers (default %(default)s)")
    options, _ = parser.parse_known_args(argv)  # the other benchmarks' options: see the docstring
    if options.rounds < 1 or options.size < 1 or options.layers < 1:
        parser.error("--rounds, --size and --layers must be at least 1")
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        print(f"bench: not installed: {', '.join(missing)} (run scripts/bootstrap)", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="bench-pycontainerd-"))
    try:
        run(options, workdir)
        return 0
    except KeyboardInterrupt:
        print("\nbench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except (AssertionError, RuntimeError) as exc:  # peers.PeerError, a failed command
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
