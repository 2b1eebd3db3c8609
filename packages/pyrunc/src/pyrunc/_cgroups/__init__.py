"""Control groups: one manager per container (:mod:`.manager`), a driver per cgroup version
(:mod:`.v1`, :mod:`.v2`, both satisfying :class:`.driver.CgroupManager`) over the cgroupfs files
(:mod:`.files`), and the counters they report (:mod:`.stats`)."""
