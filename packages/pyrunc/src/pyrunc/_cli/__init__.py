"""The ``pyrunc`` command (:mod:`.main`): runc's verbs, each a few lines over :class:`pyrunc.Container`."""
