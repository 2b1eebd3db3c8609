"""``python -m pycontainerd._cli``: the ``pyctr`` command."""

from pycontainerd._cli.main import run

run()
