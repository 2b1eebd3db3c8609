"""The JSON readers shared by the runtime-spec models, and the ``linux.resources`` models.

Re-exported from :mod:`pyrunc._spec`, which is the module to import. The readers (``_str``, ``_int``,
``_models``...) take the parent object, the key and the parent's JSON path, return the converted value
(``None``/``[]``/``{}`` when absent; an explicit JSON ``null`` counts as absent, as in Go) and raise
``SpecError`` naming the exact path of a bad value. The scalar readers build the path string only
when they raise.

Nothing heavy is imported here at run time (no typing, re, enum, json): pattern checks are written
out with ``str`` methods.
"""

from __future__ import annotations

from pyrunc._errors import SpecError
from pyrunc._jsonio import dumps as _quoted
from pyrunc._model import Model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Protocol, TypeVar

    _T = TypeVar("_T")
    _Range = tuple[int, int, str]

    class _JSONModel(Protocol):
        def to_json(self) -> dict[str, object]: ...


__all__ = [
    "BlockIO",
    "Cpu",
    "DeviceRule",
    "HugepageLimit",
    "Memory",
    "Pids",
    "Resources",
    "ThrottleDevice",
    "WeightDevice",
]

# Integer ranges of defs.json.
_U16: _Range = (0, 0xFFFF, "uint16")
_I32: _Range = (-(2**31), 2**31 - 1, "int32")
_U32: _Range = (0, 2**32 - 1, "uint32")
_I64: _Range = (-(2**63), 2**63 - 1, "int64")
_U64: _Range = (0, 2**64 - 1, "uint64")
_FILE_MODE: _Range = (0, 0o777, "a file mode (0..511)")
_POSITIVE: _Range = (1, 2**63 - 1, "a positive int64")

_TYPE_NAMES = {
    str: "string",
    int: "int",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


# -- error helpers -------------------------------------------------------------------------------------


def _at(path: str, key: str) -> str:
    """The JSON path of member ``key`` of the object at ``path``."""
    return f"{path}.{key}" if path else key


def _at_key(path: str, key: str) -> str:
    """The JSON path of a map entry: ``sysctl["net.ipv4.ip_forward"]``, ``timeOffsets.monotonic``."""
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{_quoted(key)}]"


def _wrong(path: str, expected: str, value: object) -> SpecError:
    return SpecError(path, f"expected {expected}, got {_TYPE_NAMES.get(type(value), type(value).__name__)}")


# -- readers -------------------------------------------------------------------------------------------


def _obj(value: object, path: str) -> dict[str, object]:
    """``value`` checked to be a JSON object (the top level, path "", is called ``config.json``)."""
    if isinstance(value, dict):
        return value
    raise _wrong(path or "config.json", "an object", value)


def check_no_nul(value: str, path: str) -> str:
    """``value``, refused (naming ``path``) if it holds a NUL byte: the kernel gets it as a C string,
    which a NUL would cut short, silently."""
    if "\0" in value:
        where = value.index("\0")
        raise SpecError(path, f"holds a NUL byte (at index {where}), which no C string can carry")
    return value


def check_text(value: str, path: str) -> str:
    """``value``, refused (naming ``path``) if it holds a NUL byte (see :func:`check_no_nul`) or a
    lone surrogate: a string read from JSON reaches the kernel as UTF-8."""
    check_no_nul(value, path)
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise SpecError(
                path, f"holds the lone surrogate {value[exc.start]!r} (at {exc.start}): not text"
            ) from None
    return value


def _str(o: dict[str, object], key: str, path: str) -> str | None:
    v = o.get(key)
    if v is None:
        return v
    if isinstance(v, str):
        return v if v.isascii() and "\0" not in v else check_text(v, _at(path, key))
    raise _wrong(_at(path, key), "a string", v)


def _req_str(o: dict[str, object], key: str, path: str) -> str:
    v = _str(o, key, path)
    if v is None:
        raise SpecError(_at(path, key), "required")
    return v


def _bool(o: dict[str, object], key: str, path: str) -> bool | None:
    v = o.get(key)
    if v is None or isinstance(v, bool):
        return v
    raise _wrong(_at(path, key), "a boolean", v)


def _flag(o: dict[str, object], key: str, path: str) -> bool:
    """A boolean defaulting to false."""
    return _bool(o, key, path) is True


def _as_int(v: object, rng: _Range, path: str) -> int:
    """``v`` as an integer in ``rng``; integral JSON numbers (``5.0``) count, booleans do not."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    elif not isinstance(v, int) or isinstance(v, bool):
        raise _wrong(path, "an integer", v)
    lo, hi, name = rng
    if not lo <= v <= hi:
        raise SpecError(path, f"{v} is out of range for {name} ({lo}..{hi})")
    return v


def _int(o: dict[str, object], key: str, path: str, rng: _Range) -> int | None:
    v = o.get(key)
    if v is None:
        return None
    if type(v) is int and rng[0] <= v <= rng[1]:
        return v
    return _as_int(v, rng, _at(path, key))


def _req_int(o: dict[str, object], key: str, path: str, rng: _Range) -> int:
    v = _int(o, key, path, rng)
    if v is None:
        raise SpecError(_at(path, key), "required")
    return v


def _list(o: dict[str, object], key: str, path: str) -> list[object]:
    v = o.get(key)
    if v is None:
        return []
    if isinstance(v, list):
        return v
    raise _wrong(_at(path, key), "an array", v)


def _str_list(o: dict[str, object], key: str, path: str) -> list[str]:
    out: list[str] = []
    for i, v in enumerate(_list(o, key, path)):
        if not isinstance(v, str):
            raise _wrong(f"{_at(path, key)}[{i}]", "a string", v)
        out.append(v if v.isascii() and "\0" not in v else check_text(v, f"{_at(path, key)}[{i}]"))
    return out


def _int_list(o: dict[str, object], key: str, path: str, rng: _Range) -> list[int]:
    return [_as_int(v, rng, f"{_at(path, key)}[{i}]") for i, v in enumerate(_list(o, key, path))]


def _model(o: dict[str, object], key: str, path: str, parse: Callable[[object, str], _T]) -> _T | None:
    """The object at ``key`` parsed by ``parse(value, path)`` (a ``from_json``), or None."""
    v = o.get(key)
    return None if v is None else parse(v, _at(path, key))


def _models(o: dict[str, object], key: str, path: str, parse: Callable[[object, str], _T]) -> list[_T]:
    items = _list(o, key, path)
    if not items:
        return []
    where = _at(path, key)
    return [parse(v, f"{where}[{i}]") for i, v in enumerate(items)]


def _map(o: dict[str, object], key: str, path: str) -> dict[str, object]:
    """A JSON object used as a map (values unchecked, keys checked as text), copied."""
    v = o.get(key)
    if v is None:
        return {}
    out = dict(_obj(v, _at(path, key)))
    for k in out:
        if not k.isascii() or "\0" in k:
            check_text(k, _at_key(_at(path, key), k))
    return out


def _str_map(o: dict[str, object], key: str, path: str) -> dict[str, str]:
    """defs.json ``mapStringString``."""
    out: dict[str, str] = {}
    for k, v in _map(o, key, path).items():
        if not isinstance(v, str):
            raise _wrong(_at_key(_at(path, key), k), "a string", v)
        out[k] = v if v.isascii() and "\0" not in v else check_text(v, _at_key(_at(path, key), k))
    return out


def _raw(
    o: dict[str, object], key: str, path: str, check: Callable[[dict[str, object], str], None]
) -> dict[str, object] | None:
    """An object kept as a raw dict (copied) after ``check(obj, path)`` validated it."""
    v = o.get(key)
    if v is None:
        return None
    where = _at(path, key)
    raw = _obj(v, where)
    check(raw, where)
    return dict(raw)


def _enum(o: dict[str, object], key: str, path: str, allowed: frozenset[str], what: str) -> str | None:
    v = _str(o, key, path)
    if v is None or v in allowed:
        return v
    raise SpecError(_at(path, key), f'unknown {what} "{v}"')


def _req_enum(o: dict[str, object], key: str, path: str, allowed: frozenset[str], what: str) -> str:
    v = _enum(o, key, path, allowed, what)
    if v is None:
        raise SpecError(_at(path, key), "required")
    return v


def _enum_list(o: dict[str, object], key: str, path: str, allowed: frozenset[str], what: str) -> list[str]:
    items = _str_list(o, key, path)
    for i, v in enumerate(items):
        if v not in allowed:
            raise SpecError(f"{_at(path, key)}[{i}]", f'unknown {what} "{v}"')
    return items


def _is_upper(s: str) -> bool:
    """``s`` matches ``^[A-Z]+$``."""
    return s.isascii() and s.isalpha() and s.isupper()


def _compact(d: dict[str, object]) -> dict[str, object]:
    """``d`` without None values and empty lists, like Go's ``omitempty`` (0, false, "" and {} stay:
    callers pass ``x or None`` for maps and ``flag or None`` for default-false booleans)."""
    return {k: v for k, v in d.items() if v is not None and v != []}


def _dump(items: Iterable[_JSONModel]) -> list[dict[str, object]]:
    return [item.to_json() for item in items]


def _dump_opt(item: _JSONModel | None) -> dict[str, object] | None:
    return None if item is None else item.to_json()


# -- linux.resources -----------------------------------------------------------------------------------


class DeviceRule(Model):
    """An entry of ``linux.resources.devices``: allow or deny access to devices (cgroup device controller)."""

    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(
        self,
        *,
        allow: bool = False,
        type: str | None = None,
        major: int | None = None,
        minor: int | None = None,
        access: str | None = None,
    ) -> None:
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.devices[0]") -> DeviceRule:
        o = _obj(obj, path)
        allow = _bool(o, "allow", path)
        if allow is None:
            raise SpecError(_at(path, "allow"), "required")
        access = _str(o, "access", path)
        if access is not None and access.strip("rwm"):
            raise SpecError(_at(path, "access"), f'"{access}" is not a combination of r, w and m')
        return cls(
            allow=allow,
            type=_enum(o, "type", path, _RULE_TYPES, "device type"),
            major=_int(o, "major", path, _I64),
            minor=_int(o, "minor", path, _I64),
            access=access,
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "allow": self.allow,
                "type": self.type,
                "major": self.major,
                "minor": self.minor,
                "access": self.access,
            }
        )


_RULE_TYPES = frozenset(("a", "c", "b"))


class Memory(Model):
    """``linux.resources.memory`` (bytes; -1 means unlimited for limit and swap)."""

    __slots__ = (
        "limit",
        "reservation",
        "swap",
        "kernel",
        "kernel_tcp",
        "swappiness",
        "disable_oom_killer",
        "use_hierarchy",
        "check_before_update",
    )

    def __init__(
        self,
        *,
        limit: int | None = None,
        reservation: int | None = None,
        swap: int | None = None,
        kernel: int | None = None,
        kernel_tcp: int | None = None,
        swappiness: int | None = None,
        disable_oom_killer: bool | None = None,
        use_hierarchy: bool | None = None,
        check_before_update: bool | None = None,
    ) -> None:
        self.limit = limit
        self.reservation = reservation
        self.swap = swap
        self.kernel = kernel
        self.kernel_tcp = kernel_tcp
        self.swappiness = swappiness
        self.disable_oom_killer = disable_oom_killer
        self.use_hierarchy = use_hierarchy
        self.check_before_update = check_before_update

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.memory") -> Memory:
        o = _obj(obj, path)
        return cls(
            limit=_int(o, "limit", path, _I64),
            reservation=_int(o, "reservation", path, _I64),
            swap=_int(o, "swap", path, _I64),
            kernel=_int(o, "kernel", path, _I64),
            kernel_tcp=_int(o, "kernelTCP", path, _I64),
            swappiness=_int(o, "swappiness", path, _U64),
            disable_oom_killer=_bool(o, "disableOOMKiller", path),
            use_hierarchy=_bool(o, "useHierarchy", path),
            check_before_update=_bool(o, "checkBeforeUpdate", path),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "limit": self.limit,
                "reservation": self.reservation,
                "swap": self.swap,
                "kernel": self.kernel,
                "kernelTCP": self.kernel_tcp,
                "swappiness": self.swappiness,
                "disableOOMKiller": self.disable_oom_killer,
                "useHierarchy": self.use_hierarchy,
                "checkBeforeUpdate": self.check_before_update,
            }
        )


class Cpu(Model):
    """``linux.resources.cpu``."""

    __slots__ = (
        "shares",
        "quota",
        "burst",
        "period",
        "realtime_runtime",
        "realtime_period",
        "cpus",
        "mems",
        "idle",
    )

    def __init__(
        self,
        *,
        shares: int | None = None,
        quota: int | None = None,
        burst: int | None = None,
        period: int | None = None,
        realtime_runtime: int | None = None,
        realtime_period: int | None = None,
        cpus: str | None = None,
        mems: str | None = None,
        idle: int | None = None,
    ) -> None:
        self.shares = shares
        self.quota = quota
        self.burst = burst
        self.period = period
        self.realtime_runtime = realtime_runtime
        self.realtime_period = realtime_period
        self.cpus = cpus
        self.mems = mems
        self.idle = idle

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.cpu") -> Cpu:
        o = _obj(obj, path)
        return cls(
            shares=_int(o, "shares", path, _U64),
            quota=_int(o, "quota", path, _I64),
            burst=_int(o, "burst", path, _U64),
            period=_int(o, "period", path, _U64),
            realtime_runtime=_int(o, "realtimeRuntime", path, _I64),
            realtime_period=_int(o, "realtimePeriod", path, _U64),
            cpus=_str(o, "cpus", path),
            mems=_str(o, "mems", path),
            idle=_int(o, "idle", path, _I64),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "shares": self.shares,
                "quota": self.quota,
                "burst": self.burst,
                "period": self.period,
                "realtimeRuntime": self.realtime_runtime,
                "realtimePeriod": self.realtime_period,
                "cpus": self.cpus,
                "mems": self.mems,
                "idle": self.idle,
            }
        )


class Pids(Model):
    """``linux.resources.pids`` (limit -1 or 0 means unlimited)."""

    __slots__ = ("limit",)

    def __init__(self, *, limit: int = 0) -> None:
        self.limit = limit

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.pids") -> Pids:
        return cls(limit=_req_int(_obj(obj, path), "limit", path, _I64))

    def to_json(self) -> dict[str, object]:
        return {"limit": self.limit}


class WeightDevice(Model):
    """An entry of ``linux.resources.blockIO.weightDevice``."""

    __slots__ = ("major", "minor", "weight", "leaf_weight")

    def __init__(
        self, *, major: int = 0, minor: int = 0, weight: int | None = None, leaf_weight: int | None = None
    ) -> None:
        self.major = major
        self.minor = minor
        self.weight = weight
        self.leaf_weight = leaf_weight

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.blockIO.weightDevice[0]") -> WeightDevice:
        o = _obj(obj, path)
        return cls(
            major=_req_int(o, "major", path, _I64),
            minor=_req_int(o, "minor", path, _I64),
            weight=_int(o, "weight", path, _U16),
            leaf_weight=_int(o, "leafWeight", path, _U16),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {"major": self.major, "minor": self.minor, "weight": self.weight, "leafWeight": self.leaf_weight}
        )


class ThrottleDevice(Model):
    """An entry of the ``linux.resources.blockIO.throttle*Device`` lists (bytes or I/O per second)."""

    __slots__ = ("major", "minor", "rate")

    def __init__(self, *, major: int = 0, minor: int = 0, rate: int = 0) -> None:
        self.major = major
        self.minor = minor
        self.rate = rate

    @classmethod
    def from_json(
        cls, obj: object, path: str = "linux.resources.blockIO.throttleReadBpsDevice[0]"
    ) -> ThrottleDevice:
        o = _obj(obj, path)
        return cls(
            major=_req_int(o, "major", path, _I64),
            minor=_req_int(o, "minor", path, _I64),
            rate=_int(o, "rate", path, _U64) or 0,
        )

    def to_json(self) -> dict[str, object]:
        return {"major": self.major, "minor": self.minor, "rate": self.rate}


class BlockIO(Model):
    """``linux.resources.blockIO``."""

    __slots__ = (
        "weight",
        "leaf_weight",
        "weight_device",
        "throttle_read_bps_device",
        "throttle_write_bps_device",
        "throttle_read_iops_device",
        "throttle_write_iops_device",
    )

    def __init__(
        self,
        *,
        weight: int | None = None,
        leaf_weight: int | None = None,
        weight_device: list[WeightDevice] | None = None,
        throttle_read_bps_device: list[ThrottleDevice] | None = None,
        throttle_write_bps_device: list[ThrottleDevice] | None = None,
        throttle_read_iops_device: list[ThrottleDevice] | None = None,
        throttle_write_iops_device: list[ThrottleDevice] | None = None,
    ) -> None:
        self.weight = weight
        self.leaf_weight = leaf_weight
        self.weight_device = weight_device if weight_device is not None else []
        self.throttle_read_bps_device = (
            throttle_read_bps_device if throttle_read_bps_device is not None else []
        )
        self.throttle_write_bps_device = (
            throttle_write_bps_device if throttle_write_bps_device is not None else []
        )
        self.throttle_read_iops_device = (
            throttle_read_iops_device if throttle_read_iops_device is not None else []
        )
        self.throttle_write_iops_device = (
            throttle_write_iops_device if throttle_write_iops_device is not None else []
        )

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.blockIO") -> BlockIO:
        o = _obj(obj, path)
        throttle = ThrottleDevice.from_json
        return cls(
            weight=_int(o, "weight", path, _U16),
            leaf_weight=_int(o, "leafWeight", path, _U16),
            weight_device=_models(o, "weightDevice", path, WeightDevice.from_json),
            throttle_read_bps_device=_models(o, "throttleReadBpsDevice", path, throttle),
            throttle_write_bps_device=_models(o, "throttleWriteBpsDevice", path, throttle),
            throttle_read_iops_device=_models(o, "throttleReadIOPSDevice", path, throttle),
            throttle_write_iops_device=_models(o, "throttleWriteIOPSDevice", path, throttle),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "weight": self.weight,
                "leafWeight": self.leaf_weight,
                "weightDevice": _dump(self.weight_device),
                "throttleReadBpsDevice": _dump(self.throttle_read_bps_device),
                "throttleWriteBpsDevice": _dump(self.throttle_write_bps_device),
                "throttleReadIOPSDevice": _dump(self.throttle_read_iops_device),
                "throttleWriteIOPSDevice": _dump(self.throttle_write_iops_device),
            }
        )


class HugepageLimit(Model):
    """An entry of ``linux.resources.hugepageLimits``: ``page_size`` like ``"2MB"``, limit in bytes."""

    __slots__ = ("page_size", "limit")

    def __init__(self, *, page_size: str = "", limit: int = 0) -> None:
        self.page_size = page_size
        self.limit = limit

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.hugepageLimits[0]") -> HugepageLimit:
        o = _obj(obj, path)
        size = _req_str(o, "pageSize", path)
        digits = size[:-2]
        if not (
            size[-2:] in ("KB", "MB", "GB") and digits.isascii() and digits.isdigit() and digits[0] != "0"
        ):
            raise SpecError(_at(path, "pageSize"), f'"{size}" is not a page size like "2MB" or "1GB"')
        return cls(page_size=size, limit=_req_int(o, "limit", path, _U64))

    def to_json(self) -> dict[str, object]:
        return {"pageSize": self.page_size, "limit": self.limit}


def _check_network(o: dict[str, object], path: str) -> None:
    _int(o, "classID", path, _U32)
    for i, v in enumerate(_list(o, "priorities", path)):
        where = f"{path}.priorities[{i}]"
        prio = _obj(v, where)
        _req_str(prio, "name", where)
        _req_int(prio, "priority", where, _U32)


def _check_rdma(o: dict[str, object], path: str) -> None:
    for name, v in o.items():
        where = _at_key(path, name)
        limits = _obj(v, where)
        _int(limits, "hcaHandles", where, _U32)
        _int(limits, "hcaObjects", where, _U32)


class Resources(Model):
    """``linux.resources``: cgroup settings. ``network`` and ``rdma`` are kept as validated raw dicts."""

    __slots__ = (
        "devices",
        "memory",
        "cpu",
        "pids",
        "block_io",
        "hugepage_limits",
        "network",
        "rdma",
        "unified",
    )

    def __init__(
        self,
        *,
        devices: list[DeviceRule] | None = None,
        memory: Memory | None = None,
        cpu: Cpu | None = None,
        pids: Pids | None = None,
        block_io: BlockIO | None = None,
        hugepage_limits: list[HugepageLimit] | None = None,
        network: dict[str, object] | None = None,
        rdma: dict[str, object] | None = None,
        unified: dict[str, str] | None = None,
    ) -> None:
        self.devices = devices if devices is not None else []
        self.memory = memory
        self.cpu = cpu
        self.pids = pids
        self.block_io = block_io
        self.hugepage_limits = hugepage_limits if hugepage_limits is not None else []
        self.network = network
        self.rdma = rdma
        self.unified = unified if unified is not None else {}

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources") -> Resources:
        o = _obj(obj, path)
        return cls(
            devices=_models(o, "devices", path, DeviceRule.from_json),
            memory=_model(o, "memory", path, Memory.from_json),
            cpu=_model(o, "cpu", path, Cpu.from_json),
            pids=_model(o, "pids", path, Pids.from_json),
            block_io=_model(o, "blockIO", path, BlockIO.from_json),
            hugepage_limits=_models(o, "hugepageLimits", path, HugepageLimit.from_json),
            network=_raw(o, "network", path, _check_network),
            rdma=_raw(o, "rdma", path, _check_rdma),
            unified=_str_map(o, "unified", path),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "devices": _dump(self.devices),
                "memory": _dump_opt(self.memory),
                "cpu": _dump_opt(self.cpu),
                "pids": _dump_opt(self.pids),
                "blockIO": _dump_opt(self.block_io),
                "hugepageLimits": _dump(self.hugepage_limits),
                "network": self.network,
                "rdma": self.rdma,
                "unified": self.unified or None,
            }
        )


def _names(prefix: str, words: str) -> frozenset[str]:
    """The enum values ``prefix + word`` for each space-separated word."""
    return frozenset(prefix + word for word in words.split())


def _abs_path(o: dict[str, object], key: str, path: str) -> str | None:
    """A string member that must be an absolute path (where the spec text says so)."""
    v = _str(o, key, path)
    if v is not None and not v.startswith("/"):
        raise SpecError(_at(path, key), "must be an absolute path")
    return v


def _req_abs_path(o: dict[str, object], key: str, path: str) -> str:
    v = _abs_path(o, key, path)
    if v is None:
        raise SpecError(_at(path, key), "required")
    return v
