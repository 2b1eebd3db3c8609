"""A runtime spec compiled into a :class:`~.plan.Plan`: the namespaces and the ops the container's init
runs (:mod:`.compile` orders them; :mod:`.rootfs`, :mod:`.process`, :mod:`.sysctl` and :mod:`.seccomp`
make them)."""
