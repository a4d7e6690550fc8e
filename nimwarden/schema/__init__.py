"""The declarative schema of a target profile (pydantic v2): ``base`` the building blocks families
use for their own sections, ``profile`` the profile's fields and the assembly of the whole,
``messages`` a validation error as one line. ``nimwarden schema`` prints the JSON Schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from nimwarden.errors import ConfigError
from nimwarden.schema.base import Labels, Namespace, Positive, ProfilePath, Section, Text, problem
from nimwarden.schema.messages import first_problem
from nimwarden.schema.profile import ENDPOINT_NAMES, EndpointName, json_schema, profile_model

__all__ = ["ENDPOINT_NAMES", "EndpointName", "Labels", "Namespace", "Positive", "ProfilePath", "Section", "Text",
           "json_schema", "problem", "profile_model", "validate_section"]


def validate_section(model: type[Section], raw: Any, file: Any, where: str) -> Any:
    """A family's section validated by its model at run time: the model instance, or the ConfigError
    ``file: <where>.<field>: problem`` (``where`` is the section's place, e.g. ``deployments[d].options.performance``)."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        field, why = first_problem(exc)
        raise ConfigError(str(file), f"{where}.{field}" if field else where, why) from None
