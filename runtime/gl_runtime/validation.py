"""JSON Schema (Draft 2020-12) validators for each capability's input and output, built once at load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from gl_api.models import Capability


class InvalidSchema(ValueError):
    pass


def _pointer(parts: Any) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _details(error: ValidationError) -> list[dict[str, str]]:
    # A missing property is reported at its parent; point at the property itself, as a user reads it.
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [n for n in error.validator_value if n not in error.instance and repr(n) in error.message]
        if missing:
            return [{"path": _pointer([*error.absolute_path, name]), "message": error.message} for name in missing]
    return [{"path": _pointer(error.absolute_path), "message": error.message}]


def _build(schema: dict[str, Any] | None, where: str) -> Draft202012Validator | None:
    if schema is None:
        return None
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        raise InvalidSchema(f"{where} is not a valid JSON Schema (Draft 2020-12): {error.message} at "
                            f"{_pointer(error.absolute_path) or '/'}") from None
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass(frozen=True)
class CapabilityValidators:
    input: Draft202012Validator | None
    output: Draft202012Validator | None

    @classmethod
    def of(cls, capability: Capability) -> CapabilityValidators:
        where = f"capability {capability.name}"
        return cls(_build(capability.input_schema, f"{where}: inputSchema"),
                   _build(capability.output_schema, f"{where}: outputSchema"))

    @staticmethod
    def _problems(validator: Draft202012Validator | None, document: Any) -> list[dict[str, str]]:
        if not isinstance(document, dict):
            return [{"path": "", "message": f"must be a JSON object, not {type(document).__name__}"}]
        if validator is None:
            return []
        found = [d for e in validator.iter_errors(document) for d in _details(e)]
        return sorted(found, key=lambda d: (d["path"], d["message"]))

    def input_problems(self, document: Any) -> list[dict[str, str]]:
        return self._problems(self.input, document)

    def output_problems(self, document: Any) -> list[dict[str, str]]:
        return self._problems(self.output, document)
