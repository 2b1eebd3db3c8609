"""pyrunc's JSON on the C accelerator alone: same results as the json module, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pyrunc._jsonio import dumps, loads

DOCS = [
    {"a": [1, 2.5, "é", None, True, False], "b": {}, "c": [], "d": {"e": {"f": [[]]}}},
    [],
    "text",
    -3,
]


@pytest.mark.parametrize("doc", DOCS)
def test_matches_the_json_module(doc: object) -> None:
    assert dumps(doc) == json.dumps(doc, separators=(",", ":"))
    assert dumps(doc, indent=2) == json.dumps(doc, indent=2)
    assert dumps(doc, indent="\t") == json.dumps(doc, indent="\t")
    assert loads(json.dumps(doc)) == doc
    assert loads(f" \n{json.dumps(doc, indent=4)}\n ") == doc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": }', "expecting a value at line 1 column 7"),
        ("{}x", "extra data at line 1 column 3"),
        ("", "expecting a value at line 1 column 1"),
        ('{\n"a": 1\n"b": 2}', "Expecting ',' delimiter at line 3 column 1"),
        ("NaN", "NaN is not valid JSON"),
    ],
)
def test_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        loads(text)


def test_does_not_import_re() -> None:
    code = (
        "import sys; from pyrunc._jsonio import loads, dumps; loads(dumps({'a': [1]})); "
        "print('re' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
