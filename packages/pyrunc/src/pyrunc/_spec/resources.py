"""The ``linux.resources`` models: device rules, memory, cpu, pids, block I/O and hugepage limits,
read with :mod:`pyrunc._spec.readers`."""

from __future__ import annotations

from pyrunc._errors import SpecError
from pyrunc._model import Model
from pyrunc._spec.readers import (
    I64,
    U16,
    U32,
    U64,
    as_object,
    compact,
    dump_list,
    dump_optional,
    path_of,
    path_of_key,
    read_bool,
    read_enum,
    read_int,
    read_list,
    read_model,
    read_models,
    read_raw,
    read_str,
    read_str_map,
    require_int,
    require_str,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

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
        self.allow: Final = allow
        self.type: Final = type
        self.major: Final = major
        self.minor: Final = minor
        self.access: Final = access

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.devices[0]") -> DeviceRule:
        o = as_object(obj, path)
        allow = read_bool(o, "allow", path)
        if allow is None:
            raise SpecError(path_of(path, "allow"), "required")
        access = read_str(o, "access", path)
        if access is not None and access.strip("rwm"):
            raise SpecError(path_of(path, "access"), f'"{access}" is not a combination of r, w and m')
        return cls(
            allow=allow,
            type=read_enum(o, "type", path, _RULE_TYPES, "device type"),
            major=read_int(o, "major", path, I64),
            minor=read_int(o, "minor", path, I64),
            access=access,
        )

    def to_json(self) -> dict[str, object]:
        return compact(
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
        self.limit: Final = limit
        self.reservation: Final = reservation
        self.swap: Final = swap
        self.kernel: Final = kernel
        self.kernel_tcp: Final = kernel_tcp
        self.swappiness: Final = swappiness
        self.disable_oom_killer: Final = disable_oom_killer
        self.use_hierarchy: Final = use_hierarchy
        self.check_before_update: Final = check_before_update

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.memory") -> Memory:
        o = as_object(obj, path)
        return cls(
            limit=read_int(o, "limit", path, I64),
            reservation=read_int(o, "reservation", path, I64),
            swap=read_int(o, "swap", path, I64),
            kernel=read_int(o, "kernel", path, I64),
            kernel_tcp=read_int(o, "kernelTCP", path, I64),
            swappiness=read_int(o, "swappiness", path, U64),
            disable_oom_killer=read_bool(o, "disableOOMKiller", path),
            use_hierarchy=read_bool(o, "useHierarchy", path),
            check_before_update=read_bool(o, "checkBeforeUpdate", path),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
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
        self.shares: Final = shares
        self.quota: Final = quota
        self.burst: Final = burst
        self.period: Final = period
        self.realtime_runtime: Final = realtime_runtime
        self.realtime_period: Final = realtime_period
        self.cpus: Final = cpus
        self.mems: Final = mems
        self.idle: Final = idle

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.cpu") -> Cpu:
        o = as_object(obj, path)
        return cls(
            shares=read_int(o, "shares", path, U64),
            quota=read_int(o, "quota", path, I64),
            burst=read_int(o, "burst", path, U64),
            period=read_int(o, "period", path, U64),
            realtime_runtime=read_int(o, "realtimeRuntime", path, I64),
            realtime_period=read_int(o, "realtimePeriod", path, U64),
            cpus=read_str(o, "cpus", path),
            mems=read_str(o, "mems", path),
            idle=read_int(o, "idle", path, I64),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
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
        self.limit: Final = limit

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.pids") -> Pids:
        return cls(limit=require_int(as_object(obj, path), "limit", path, I64))

    def to_json(self) -> dict[str, object]:
        return {"limit": self.limit}


class WeightDevice(Model):
    """An entry of ``linux.resources.blockIO.weightDevice``."""

    __slots__ = ("major", "minor", "weight", "leaf_weight")

    def __init__(
        self, *, major: int = 0, minor: int = 0, weight: int | None = None, leaf_weight: int | None = None
    ) -> None:
        self.major: Final = major
        self.minor: Final = minor
        self.weight: Final = weight
        self.leaf_weight: Final = leaf_weight

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.blockIO.weightDevice[0]") -> WeightDevice:
        o = as_object(obj, path)
        return cls(
            major=require_int(o, "major", path, I64),
            minor=require_int(o, "minor", path, I64),
            weight=read_int(o, "weight", path, U16),
            leaf_weight=read_int(o, "leafWeight", path, U16),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
            {"major": self.major, "minor": self.minor, "weight": self.weight, "leafWeight": self.leaf_weight}
        )


class ThrottleDevice(Model):
    """An entry of the ``linux.resources.blockIO.throttle*Device`` lists (bytes or I/O per second)."""

    __slots__ = ("major", "minor", "rate")

    def __init__(self, *, major: int = 0, minor: int = 0, rate: int = 0) -> None:
        self.major: Final = major
        self.minor: Final = minor
        self.rate: Final = rate

    @classmethod
    def from_json(
        cls, obj: object, path: str = "linux.resources.blockIO.throttleReadBpsDevice[0]"
    ) -> ThrottleDevice:
        o = as_object(obj, path)
        return cls(
            major=require_int(o, "major", path, I64),
            minor=require_int(o, "minor", path, I64),
            rate=read_int(o, "rate", path, U64) or 0,
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
        self.weight: Final = weight
        self.leaf_weight: Final = leaf_weight
        self.weight_device: Final = weight_device if weight_device is not None else []
        self.throttle_read_bps_device: Final = (
            throttle_read_bps_device if throttle_read_bps_device is not None else []
        )
        self.throttle_write_bps_device: Final = (
            throttle_write_bps_device if throttle_write_bps_device is not None else []
        )
        self.throttle_read_iops_device: Final = (
            throttle_read_iops_device if throttle_read_iops_device is not None else []
        )
        self.throttle_write_iops_device: Final = (
            throttle_write_iops_device if throttle_write_iops_device is not None else []
        )

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.blockIO") -> BlockIO:
        o = as_object(obj, path)
        throttle = ThrottleDevice.from_json
        return cls(
            weight=read_int(o, "weight", path, U16),
            leaf_weight=read_int(o, "leafWeight", path, U16),
            weight_device=read_models(o, "weightDevice", path, WeightDevice.from_json),
            throttle_read_bps_device=read_models(o, "throttleReadBpsDevice", path, throttle),
            throttle_write_bps_device=read_models(o, "throttleWriteBpsDevice", path, throttle),
            throttle_read_iops_device=read_models(o, "throttleReadIOPSDevice", path, throttle),
            throttle_write_iops_device=read_models(o, "throttleWriteIOPSDevice", path, throttle),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
            {
                "weight": self.weight,
                "leafWeight": self.leaf_weight,
                "weightDevice": dump_list(self.weight_device),
                "throttleReadBpsDevice": dump_list(self.throttle_read_bps_device),
                "throttleWriteBpsDevice": dump_list(self.throttle_write_bps_device),
                "throttleReadIOPSDevice": dump_list(self.throttle_read_iops_device),
                "throttleWriteIOPSDevice": dump_list(self.throttle_write_iops_device),
            }
        )


class HugepageLimit(Model):
    """An entry of ``linux.resources.hugepageLimits``: ``page_size`` like ``"2MB"``, limit in bytes."""

    __slots__ = ("page_size", "limit")

    def __init__(self, *, page_size: str = "", limit: int = 0) -> None:
        self.page_size: Final = page_size
        self.limit: Final = limit

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources.hugepageLimits[0]") -> HugepageLimit:
        o = as_object(obj, path)
        size = require_str(o, "pageSize", path)
        digits = size[:-2]
        if not (
            size[-2:] in ("KB", "MB", "GB") and digits.isascii() and digits.isdigit() and digits[0] != "0"
        ):
            raise SpecError(path_of(path, "pageSize"), f'"{size}" is not a page size like "2MB" or "1GB"')
        return cls(page_size=size, limit=require_int(o, "limit", path, U64))

    def to_json(self) -> dict[str, object]:
        return {"pageSize": self.page_size, "limit": self.limit}


def _check_network(o: dict[str, object], path: str) -> None:
    read_int(o, "classID", path, U32)
    for i, v in enumerate(read_list(o, "priorities", path)):
        where = f"{path}.priorities[{i}]"
        prio = as_object(v, where)
        require_str(prio, "name", where)
        require_int(prio, "priority", where, U32)


def _check_rdma(o: dict[str, object], path: str) -> None:
    for name, v in o.items():
        where = path_of_key(path, name)
        limits = as_object(v, where)
        read_int(limits, "hcaHandles", where, U32)
        read_int(limits, "hcaObjects", where, U32)


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
        self.devices: Final = devices if devices is not None else []
        self.memory: Final = memory
        self.cpu: Final = cpu
        self.pids: Final = pids
        self.block_io: Final = block_io
        self.hugepage_limits: Final = hugepage_limits if hugepage_limits is not None else []
        self.network: Final = network
        self.rdma: Final = rdma
        self.unified: Final = unified if unified is not None else {}

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.resources") -> Resources:
        o = as_object(obj, path)
        return cls(
            devices=read_models(o, "devices", path, DeviceRule.from_json),
            memory=read_model(o, "memory", path, Memory.from_json),
            cpu=read_model(o, "cpu", path, Cpu.from_json),
            pids=read_model(o, "pids", path, Pids.from_json),
            block_io=read_model(o, "blockIO", path, BlockIO.from_json),
            hugepage_limits=read_models(o, "hugepageLimits", path, HugepageLimit.from_json),
            network=read_raw(o, "network", path, _check_network),
            rdma=read_raw(o, "rdma", path, _check_rdma),
            unified=read_str_map(o, "unified", path),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
            {
                "devices": dump_list(self.devices),
                "memory": dump_optional(self.memory),
                "cpu": dump_optional(self.cpu),
                "pids": dump_optional(self.pids),
                "blockIO": dump_optional(self.block_io),
                "hugepageLimits": dump_list(self.hugepage_limits),
                "network": self.network,
                "rdma": self.rdma,
                "unified": self.unified or None,
            }
        )
