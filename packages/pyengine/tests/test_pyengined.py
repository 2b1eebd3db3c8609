"""The ``pyengined`` command: flags, the configuration file, logging and signals."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyengine import ConfigError
from pyengine._config import load_config

PYENGINED = Path(sys.executable).parent / "pyengined"
LOG_LINE = re.compile(r'time="[0-9T:.-]+Z" level=[a-z]+ msg=".*"')


def start(scratch: Path, *args: str) -> subprocess.Popen[str]:
    assert PYENGINED.exists(), f"{PYENGINED}: the package's console script is not installed"
    return subprocess.Popen(
        [str(PYENGINED), "--config-file", str(scratch / "daemon.json"), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_until_a_signal_and_logs_one_line_per_event(scratch: Path, signum: int) -> None:
    (scratch / "daemon.json").write_text(
        json.dumps({"data-root": str(scratch / "data"), "log-level": "debug"})
    )
    sock, pidfile = scratch / "engine.sock", scratch / "engined.pid"
    process = start(
        scratch, "-H", f"unix://{sock}", "--exec-root", str(scratch / "run"), "--pidfile", str(pidfile)
    )
    try:
        wait_for(pidfile, process)
        assert pidfile.read_text().strip() == str(process.pid)
    finally:
        process.send_signal(signum)
        _, log = process.communicate(timeout=30)
    assert process.returncode == 0, log
    lines = log.splitlines()
    assert lines and all(LOG_LINE.fullmatch(line) for line in lines), log
    assert f'msg="API listen on {sock}"' in log
    assert 'msg="daemon shut down cleanly"' in log
    assert not sock.exists() and not pidfile.exists()


def test_a_directive_given_twice_is_refused_naming_it(scratch: Path) -> None:
    (scratch / "daemon.json").write_text(json.dumps({"data-root": str(scratch / "data")}))
    process = start(scratch, "--data-root", str(scratch / "other"), "-H", f"unix://{scratch}/s.sock")
    _, log = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "specified both as a flag and in the configuration file: data-root" in log


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"data-root": "/x", "colour": "blue"}', "don't match any configuration option: colour"),
        ("{not json", "not JSON"),
        ('["a"]', "not a JSON object"),
        ('{"hosts": "unix:///x.sock"}', "'hosts' must be a list of strings"),
        ('{"live-restore": "yes"}', "'live-restore' must be true or false"),
        ('{"hosts": ["tcp://0.0.0.0:2375"]}', "listening on TCP without TLS gives root access"),
        ('{"hosts": ["fd://"]}', "only unix:///PATH sockets and tcp://HOST:PORT are supported"),
        ('{"log-level": "loud"}', "log-level 'loud': not one of"),
        ('{"insecure-registries": ["10.0.0.0/33"]}', "'10.0.0.0/33' is not a CIDR"),
        ('{"registry-mirrors": ["ftp://mirror.test"]}', "invalid mirror: unsupported scheme 'ftp'"),
        ('{"registry-mirrors": ["https://mirror.test/v2"]}', "invalid mirror: path, query, or fragment"),
    ],
)
def test_a_bad_configuration_file_is_refused_naming_the_fault(
    scratch: Path, content: str, message: str
) -> None:
    path = scratch / "daemon.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config({}, path)


def test_flags_and_file_merge_and_insecure_registries_add_to_loopback(scratch: Path) -> None:
    path = scratch / "daemon.json"
    path.write_text(json.dumps({"insecure-registries": ["myregistry:5000"], "live-restore": False}))
    config = load_config({"data-root": str(scratch / "data")}, path)
    assert config.data_root == scratch / "data"
    assert config.insecure_registries == ("127.0.0.0/8", "myregistry:5000")
    assert config.live_restore is False


def test_a_missing_configuration_file_is_refused(scratch: Path) -> None:
    with pytest.raises(ConfigError, match="No such file or directory"):
        load_config({}, scratch / "absent.json")


def test_version_flag() -> None:
    done = subprocess.run([str(PYENGINED), "--version"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.startswith("pyengined ")
