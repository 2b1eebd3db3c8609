"""The runtime spec: ``config.json`` read into typed models (:mod:`.config`, :mod:`.process`,
:mod:`.resources`, built with :mod:`.readers`), and Docker's defaults (:mod:`.docker`)."""
