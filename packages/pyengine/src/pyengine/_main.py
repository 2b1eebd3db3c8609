"""``pyengined``: the daemon's command line, with dockerd's flag names."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import pyengine
from pyengine._config import (
    DEFAULT_CONFIG_FILE,
    DEFAULT_DATA_ROOT,
    DEFAULT_EXEC_ROOT,
    DEFAULT_HOST,
    FILE_KEYS,
    LOG_LEVELS,
    load_config,
)
from pyengine._daemon import Daemon
from pyengine._errors import DaemonError

__all__ = ["LogfmtFormatter", "main"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}


class LogfmtFormatter(logging.Formatter):
    """One line per event, as dockerd writes them: ``time="…" level=info msg="…"``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        quoted = message.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        level = _NAMES.get(record.levelno, "fatal")
        return f'time="{stamp}.{int(record.msecs):03d}Z" level={level} msg="{quoted}"'


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyengined",
        description="The Docker Engine API daemon of the pyrunc stack (dockerd's flags).",
        argument_default=argparse.SUPPRESS,  # only the flags given reach the configuration
    )
    p.add_argument(
        "--config-file", default=None, help=f"the daemon's JSON configuration (default {DEFAULT_CONFIG_FILE})"
    )
    p.add_argument(
        "-H", "--host", dest="hosts", action="append", help=f"socket to listen on (default {DEFAULT_HOST})"
    )
    p.add_argument("--data-root", help=f"where the engine keeps its state (default {DEFAULT_DATA_ROOT})")
    p.add_argument(
        "--exec-root", help=f"where the engine keeps its runtime state (default {DEFAULT_EXEC_ROOT})"
    )
    p.add_argument("-p", "--pidfile", help="the daemon's pid file (default <exec-root>/pyengined.pid)")
    p.add_argument("-G", "--group", help="the unix socket's group (default docker)")
    p.add_argument("-l", "--log-level", choices=LOG_LEVELS, help="the least level logged (default info)")
    p.add_argument(
        "--live-restore",
        type=_boolean,
        nargs="?",
        const=True,
        help="keep containers running across restarts (default true)",
    )
    p.add_argument(
        "--insecure-registry",
        dest="insecure_registries",
        action="append",
        help="a registry reached over plain HTTP (127.0.0.0/8 is)",
    )
    p.add_argument(
        "--registry-mirror",
        dest="registry_mirrors",
        action="append",
        help="a registry mirror of docker.io (http:// or https://), tried before it; repeat for more",
    )
    p.add_argument(
        "--tls",
        type=_boolean,
        nargs="?",
        const=True,
        help="serve tcp:// hosts over TLS (implied by --tlsverify)",
    )
    p.add_argument(
        "--tlsverify",
        type=_boolean,
        nargs="?",
        const=True,
        help="serve tcp:// hosts over TLS and require clients' certificates signed by --tlscacert",
    )
    p.add_argument(
        "--tlscacert", help="the CA clients' certificates must be signed by (default ~/.docker/ca.pem)"
    )
    p.add_argument("--tlscert", help="the server's TLS certificate (default ~/.docker/cert.pem)")
    p.add_argument("--tlskey", help="the server's TLS key (default ~/.docker/key.pem)")
    p.add_argument(
        "-b", "--bridge", help="the default network's Linux bridge, made by the daemon (default pyengine0)"
    )
    p.add_argument("--bip", help="the default bridge's address and subnet, e.g. 172.30.0.1/16")
    p.add_argument(
        "--default-address-pool",
        dest="default_address_pools",
        action="append",
        type=_pool,
        help="base=CIDR,size=N: where networks' subnets are cut from; repeat for more",
    )
    p.add_argument("-v", "--version", action="version", version=f"pyengined {pyengine.__version__}")
    return p


def _pool(text: str) -> dict[str, Any]:
    fields = dict(part.partition("=")[::2] for part in text.split(","))
    if set(fields) != {"base", "size"} or not fields["size"].isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not base=CIDR,size=N")
    return {"base": fields["base"], "size": int(fields["size"])}


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


#: The argparse destinations (DaemonConfig's fields) and the configuration file's keys they set.
_KEYS = {field: key for key, field in FILE_KEYS.items()}


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    config_file = args.pop("config_file", None)
    flags: dict[str, Any] = {_KEYS[name]: value for name, value in args.items()}
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        config = load_config(flags, config_file)
        root.setLevel(_LEVELS.get(config.log_level, logging.CRITICAL))
        logging.getLogger("pyengine").info("starting pyengined %s", pyengine.__version__)
        Daemon(config).run()
    except DaemonError as exc:
        logging.getLogger("pyengine").critical("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
