"""pyrunc's JSON on the C accelerator alone: same results as the json module, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pyrunc
from pyrunc._jsonio import canonical, dumps, loads

DOCS = [
    {"a": [1, 2.5, 'é\u2028\x01"\\', None, True, False], "b": {}, "c": [], "d": {"e": {"f": [[]]}}},
    {"z": [{"y": 1e100, "b": -0.0}], "a": ["big", 2**70]},
    [],
    "text",
    -3,
]


@pytest.mark.parametrize("doc", DOCS)
def test_matches_the_json_module(doc: object) -> None:
    assert dumps(doc) == json.dumps(doc, separators=(",", ":"))
    assert dumps(doc, indent=2) == json.dumps(doc, indent=2)
    assert dumps(doc, indent="\t") == json.dumps(doc, indent="\t")
    assert canonical(doc) == json.dumps(doc, sort_keys=True, separators=(",", ":"))
    assert loads(json.dumps(doc)) == doc
    assert loads(f" \n{json.dumps(doc, indent=4)}\n ") == doc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": }', "expecting a value at line 1 column 7"),
        ("{}x", "extra data at line 1 column 3"),
        ("", "expecting a value at line 1 column 1"),
        ('{\n"a": 1\n"b": 2}', "Expecting ',' delimiter at line 3 column 1"),
        ("NaN", "NaN is not valid JSON at line 1 column 1"),
        ('{"NaN": [1, -Infinity]}', "-Infinity is not valid JSON at line 1 column 13"),
    ],
)
def test_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        loads(text)


def test_a_tuple_is_an_array() -> None:
    assert dumps({"a": ("x", 1)}) == dumps({"a": ["x", 1]}) == '{"a":["x",1]}'


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (float("nan"), ValueError, "Out of range float values are not JSON compliant: nan"),
        ({"a": [float("-inf")]}, ValueError, "Out of range float values are not JSON compliant: -inf"),
        ({1: "a"}, TypeError, "keys must be str, not int"),
        ([b"bytes"], TypeError, "Object of type bytes is not JSON serializable"),
    ],
)
def test_what_json_cannot_hold_is_refused(value: object, error: type[Exception], message: str) -> None:
    for write in (dumps, canonical):
        with pytest.raises(error, match=f"^{message}$"):
            write(value)


def test_does_not_import_re() -> None:
    code = (
        "import sys; from pyrunc._jsonio import loads, dumps; loads(dumps({'a': [1]})); "
        "print('re' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# What the C scanner reports through json.decoder.JSONDecodeError: before json.decoder is loaded, it
# used to fail with SystemError ("returned NULL without setting an exception").
FRESH_ERRORS = {
    "{not json": "Expecting property name enclosed in double quotes at line 1 column 2",
    '{"ociVersion": "1.0.2", ': "Expecting property name enclosed in double quotes at line 1 column 25",
    '{"a" 1}': "Expecting ':' delimiter at line 1 column 6",
    '["a" "b"]': "Expecting ',' delimiter at line 1 column 6",
    '"abc': "Unterminated string starting at line 1 column 1",
    '"\\x"': "Invalid \\escape at line 1 column 2",
    '"a\tb"': "Invalid control character at line 1 column 3",
    "[" * 100_000: "nested too deeply",
}


def test_errors_in_a_fresh_interpreter() -> None:
    """As the pyrunc command parses a config: in a ``python -I -S`` that has no json module loaded."""
    package_parent = str(Path(pyrunc.__file__).resolve().parents[1])
    code = (
        f"import sys\nsys.path.insert(0, {package_parent!r})\n"
        "from pyrunc._jsonio import loads\n"
        "for text in sys.stdin.read().split('\\0'):\n"
        "    try:\n"
        "        loads(text)\n"
        "    except ValueError as exc:\n"
        "        print(exc)\n"
        "    else:\n"
        "        print('parsed')\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        input="\0".join(FRESH_ERRORS),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == list(FRESH_ERRORS.values())
