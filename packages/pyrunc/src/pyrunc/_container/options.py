"""How to create a container: runc's ``create`` and ``run`` flags as one typed value."""

from __future__ import annotations

from pyrunc._model import Model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = ["CreateOptions"]


class CreateOptions(Model):
    """What :meth:`pyrunc.Container.create` and :meth:`~pyrunc.Container.run` make a container from,
    besides its id and state root; the ``pyrunc create`` and ``run`` flags of the same names.

    - ``bundle``: the OCI bundle (its ``config.json`` and, usually, its root filesystem);
    - ``pid_file``: a file to write the init's pid to;
    - ``console_socket``: with ``process.terminal``, the unix socket that receives the pty master;
    - ``no_pivot``: move the root filesystem to ``/`` and chroot instead of ``pivot_root``;
    - ``no_new_keyring``: keep the caller's session keyring rather than join a new one;
    - ``preserve_fds``: how many descriptors after 0, 1 and 2 the init keeps (3 to 3 + n - 1);
    - ``stdio``: the descriptors that become the init's stdin, stdout and stderr (None: ours).
    """

    __slots__ = (
        "bundle",
        "console_socket",
        "no_new_keyring",
        "no_pivot",
        "pid_file",
        "preserve_fds",
        "stdio",
    )

    def __init__(
        self,
        bundle: str,
        *,
        pid_file: str | None = None,
        console_socket: str | None = None,
        no_pivot: bool = False,
        no_new_keyring: bool = False,
        preserve_fds: int = 0,
        stdio: tuple[int, int, int] | None = None,
    ) -> None:
        self.bundle: Final = bundle
        self.pid_file: Final = pid_file
        self.console_socket: Final = console_socket
        self.no_pivot: Final = no_pivot
        self.no_new_keyring: Final = no_new_keyring
        self.preserve_fds: Final = preserve_fds
        self.stdio: Final = stdio
