"""The per-container monitor (containerd's shim, podman's conmon) and the Python side of it.

One ``pycontainerd-monitor`` runs per container: the parent and subreaper of the container's
processes, the holder of their stdio, the writer of their logs and exit records. It is a small C
program (``monitor.c`` and the files beside it) because it lives as long as the container and must
cost less memory than containerd-shim-runc-v2; this package starts it, talks to it, and reads what
it leaves on disk.

Command line::

    pycontainerd-monitor --dir DIR --id ID --namespace NS [--events FILE] [--log-max BYTES]
        [--log FILE [--log-max-size BYTES] [--log-max-files N]] [--memory-cgroup PATH]
        --ready-fd N --adopt PID
        (--stdout-fd N --stderr-fd N [--stdin --stdin-fd N] | --tty --console-fd N [--stdin])

It is never started on its own: :class:`MonitorLauncher` forks, creates the container in the child (so
the init, PID, is that process's child) and runs the program there (``execve``), handing it the read
ends of the init's stdout and stderr pipes and the write end of its stdin, or with a terminal the
socket listening on ``DIR/console.sock`` where the init's pty master waits. Bad arguments: a
message on stderr, exit status 2. Otherwise the monitor writes ``ok INIT_PID`` or ``error REASON``
(one line) to the ready fd; after an error it kills the init, removes its sockets and
``monitor.pid`` and exits 1.

Files in ``DIR`` (unix socket paths must stay under 108 bytes):

=========================== ===================================================================
``monitor.pid``             ``PID STARTTIME`` (field 22 of /proc/PID/stat): :func:`monitor_alive`;
                            written first by the launcher's process that becomes the monitor,
                            before it creates the container
``monitor.sock``            the control socket (protocol in ``protocol``): :class:`Monitor`
``console.sock``            with ``--tty``, where the init sends its pty master (removed then)
``PROC.console.sock``       the same for an exec'd process with a terminal
``PROC.log``, ``.log.1``    an exec'd process's output, a record per line (``logfile`` has the
                            format: a stdcopy frame, 1 stdout and 2 stderr, with a terminal 1 is
                            all it shows and 2 only the runtime's own complaints, then the time
                            read and the length again), rotated to ``.log.1`` before a record
                            that would take it past ``--log-max``
``PROC.exit``               ``{"pid", "status", "exited_at", "oom_killed"}``, written atomically
=========================== ===================================================================

The init's log is the same, in ``--log FILE`` (an absolute path, whose directory exists; without
it ``DIR/init.log``): the container's log, kept apart from the task's directory so that it outlives
the task and is appended to by the next one. With ``--log-max-size`` (0, the default: never) it is
rotated as Docker's json-file driver rotates, keeping ``--log-max-files`` files (1, the default: the
file starts anew) as ``FILE.1`` (newest) to ``FILE.N-1``.

``PROC`` is ``init`` for the container's init, else the exec id (1-64 of ``[A-Za-z0-9._-]``, not
starting with a dot; taken for good once its runtime succeeded). The exit record is written once the
process has exited *and* its output has ended (EOF of its pipes, EIO of its terminal), so a log
is complete when the record exists; a leftover process that keeps the output open for 2 s past
the exit (while output is not being held back for a slow reader) is cut off. ``status`` is the
exit code or 128+signal. ``oom_killed`` (needs ``--memory-cgroup``, cgroup v1) is true for init
when the cgroup's ``oom_kill`` count is non-zero at the exit, for an exec'd process when it grew
while the process ran. With ``--events FILE`` each exit and each OOM notification of the memory
cgroup appends one JSON line (``/tasks/exit``, ``/tasks/oom``) in a single ``O_APPEND`` write.

The monitor exits when init and every exec'd process have been recorded and attached clients
have their exit frames (a client that takes nothing for 10 s is dropped). Once init has exited,
``exec`` is refused. ``close_stdin`` on a terminal stops passing input on (a terminal cannot be
half-closed; send ``b"\\x04"`` for a line-mode reader's EOF).
"""

from __future__ import annotations

from pycontainerd._monitor.client import Attachment, Monitor, ProcessStatus, Watch, watch
from pycontainerd._monitor.launch import (
    DEFAULT_LOG_MAX,
    CreateRequest,
    MonitorLauncher,
    MonitorOptions,
    MonitorProcess,
    monitor_binary,
    runtime_error,
)
from pycontainerd._monitor.logfile import follow_watch, log_files, read_entries, read_log
from pycontainerd._monitor.protocol import FRAME_STDERR, FRAME_STDOUT, MonitorError
from pycontainerd._monitor.records import (
    ExitStatus,
    monitor_alive,
    process_alive,
    read_exit,
    wait_monitor_exit,
    write_process_file,
)

__all__ = [
    "DEFAULT_LOG_MAX",
    "FRAME_STDERR",
    "FRAME_STDOUT",
    "Attachment",
    "CreateRequest",
    "ExitStatus",
    "Monitor",
    "MonitorError",
    "MonitorLauncher",
    "MonitorOptions",
    "MonitorProcess",
    "ProcessStatus",
    "Watch",
    "follow_watch",
    "log_files",
    "monitor_alive",
    "monitor_binary",
    "process_alive",
    "read_entries",
    "read_exit",
    "read_log",
    "runtime_error",
    "wait_monitor_exit",
    "watch",
    "write_process_file",
]
