"""A plan started: the child cloned and talked to until it is ready (:mod:`.child`), and its terminal
(:mod:`.console`)."""
