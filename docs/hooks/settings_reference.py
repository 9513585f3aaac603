"""MkDocs hook: the configuration reference, generated from the settings models, so the
page can never disagree with what the code accepts. A page holding the marker
``<!-- settings: module:Class -->`` gets that model's keys as tables, one per section."""

from __future__ import annotations

import importlib
import re
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

MARKER = re.compile(r"<!-- settings: ([\w.]+):(\w+) -->")


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda m: reference(getattr(importlib.import_module(m[1]), m[2])), markdown)


def reference(model: type[BaseModel]) -> str:
    sections: list[tuple[str, type[BaseModel]]] = [("", model)]
    out = []
    while sections:
        prefix, section = sections.pop(0)
        rows = []
        for name, field in section.model_fields.items():
            key = f"{prefix}{name}"
            nested = _section(field)
            if nested is not None:
                sections.append((f"{key}.", nested))
                continue
            rows.append(f"| `{key}` | {_type(field)} | {_default(field)} | {_words(field)} |")
        title = prefix.rstrip(".") or "top level"
        doc = (section.__doc__ or "").strip().replace("\n", " ")
        out += [f"### `{title}`", "", doc, "", "| key | type | default | what it does |"]
        out += ["|---|---|---|---|", *rows, ""]
    return "\n".join(out)


def _section(field: FieldInfo) -> type[BaseModel] | None:
    kind = field.annotation
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _type(field: FieldInfo) -> str:
    text = getattr(field.annotation, "__name__", None) or str(field.annotation)
    return "`" + re.sub(r"\b(typing|pathlib|collections\.abc)\.", "", text) + "`"


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        value = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    text = repr(value.value if hasattr(value, "value") else value)
    return f"`{text}`" if len(text) < 40 else "see below" if isinstance(value, dict) else "…"


def _words(field: FieldInfo) -> str:
    return (field.description or "").replace("|", "\\|").replace("\n", " ")
