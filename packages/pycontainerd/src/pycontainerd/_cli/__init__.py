"""``pyctr``, containerd's ``ctr`` for pycontainerd: :mod:`.main` (the entry: parser, exit statuses),
the commands of :mod:`.images` and :mod:`.tasks` on what :mod:`.common` shares, declared with
:mod:`.parse`, pyctr's argparse-compatible parser."""
