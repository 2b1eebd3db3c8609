"""The specifications the tests validate against, from the repository's ``spec/`` directory.

The files are vendored (``spec/README.md`` names their upstream commits and licence) and found
relative to this file, so a clone placed anywhere tests the same. A missing file fails the test that
asked for it, naming the file; it never skips.

    config_validator = runtime_spec_validator("config-schema.json")
    manifest_validator = image_spec_validator("image-manifest-schema.json")
    profile = spec_file("seccomp-default.json")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT4

__all__ = ["SPEC", "image_spec_validator", "runtime_spec_validator", "spec_file"]

SPEC = Path(__file__).resolve().parents[1] / "spec"

RUNTIME_SPEC_FILES = (
    "config-schema.json",
    "config-linux.json",
    "defs.json",
    "defs-linux.json",
    "features-schema.json",
    "features-linux.json",
    "state-schema.json",
)
IMAGE_SPEC_FILES = (
    "config-schema.json",
    "content-descriptor.json",
    "defs-descriptor.json",
    "defs.json",
    "image-index-schema.json",
    "image-layout-schema.json",
    "image-manifest-schema.json",
)


def spec_file(name: str) -> Path:
    """``spec/<name>``; fails the calling test when the file is missing."""
    path = SPEC / name
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: the repository carries the specifications its tests read in spec/ "
            "(spec/README.md); restore it from git",
            pytrace=False,
        )
    return path


def _load(name: str) -> Any:
    return json.loads(spec_file(name).read_text(encoding="utf-8"))


def runtime_spec_validator(schema: str) -> jsonschema.Draft4Validator:
    """A validator for one of the OCI runtime-spec schemas (``config-schema.json``,
    ``features-schema.json``, ``state-schema.json``), its ``$ref``s into the other files of the
    schema directory resolved by file name, as the schemas write them."""
    registry: referencing.Registry[Any] = referencing.Registry().with_resources(
        (name, DRAFT4.create_resource(_load(f"oci-runtime-spec/{name}"))) for name in RUNTIME_SPEC_FILES
    )
    contents = registry.contents(schema)
    jsonschema.Draft4Validator.check_schema(contents)
    return jsonschema.Draft4Validator(contents, registry=registry)


def image_spec_validator(schema: str) -> jsonschema.Draft4Validator:
    """A validator for one of the OCI image-spec schemas (``image-manifest-schema.json``, ...).

    Their nested draft-04 ``id``s move the base URI of the relative ``$ref``s
    (``defs-descriptor.json`` under ``.../manifest/annotations``), so every reference is resolved by
    the last segment of its URI, the file name.
    """
    documents = {name: _load(f"oci-image-spec/{name}") for name in IMAGE_SPEC_FILES}

    def retrieve(uri: str) -> referencing.Resource[Any]:
        name = uri.rsplit("/", 1)[-1].partition("#")[0]
        if name not in documents:
            raise referencing.exceptions.NoSuchResource(ref=uri)
        return DRAFT4.create_resource(documents[name])

    registry: referencing.Registry[Any] = referencing.Registry(retrieve=retrieve)
    contents = documents[schema]
    jsonschema.Draft4Validator.check_schema(contents)
    return jsonschema.Draft4Validator(contents, registry=registry)
