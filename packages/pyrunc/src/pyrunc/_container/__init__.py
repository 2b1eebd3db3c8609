"""Containers on disk: their saved state and status (:mod:`.state`), how they are made (:mod:`.create`)
and removed (:mod:`.remove`), and :class:`~.container.Container`, the verbs over them."""
