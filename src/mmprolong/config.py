"""Typed configs: keyword-only dataclasses, loaded from YAML or dicts and validated before any work.

Every stage owns one ``Config`` subclass. A field documents itself with ``metadata={"help": ...}``
(the CLI and the README's configuration reference are generated from it). Loading checks types,
rejects unknown keys, then calls ``validate()``; each failure is a ConfigError naming the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Self

import yaml

from mmprolong.errors import ConfigError


def field(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with its help text (the unit belongs in the help)."""
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(kw_only=True)
class Config:
    """Base of every stage config."""

    def validate(self) -> None:
        """Reject bad values and bad combinations with a ConfigError. Subclasses extend it."""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, *, prefix: str = "", validate: bool = True) -> Self:
        """Build from a mapping, coercing types; ``validate=False`` leaves ``validate()`` to the caller."""
        data = dict(data or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(prefix + key, data[key], f"unknown field; known: {', '.join(sorted(known))}")
        hints = typing.get_type_hints(cls)
        kwargs = {name: _coerce(prefix + name, hints[name], value) for name, value in data.items()}
        try:
            config = cls(**kwargs)
        except TypeError as exc:  # a required field is missing
            raise ConfigError(prefix.rstrip(".") or cls.__name__, data, str(exc)) from None
        if validate:
            try:
                config.validate()
            except ConfigError as exc:  # name the field as the caller's mapping spells it
                if not prefix or exc.field.startswith(prefix):
                    raise
                raise ConfigError(prefix + exc.field, exc.value, exc.fix) from None
        return config

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> Self:
        path = Path(path)
        if not path.is_file():
            raise ConfigError("config", str(path), "file not found")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError("config", str(path), "the YAML file must hold a mapping of fields")
        return cls.from_dict(merge_overrides(data, overrides or {}))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """A short hash of the resolved config; outputs record it so a resume with other settings is refused."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def reference(cls) -> list[tuple[str, str, str, str]]:
        """(name, type, default, help) of every field, nested configs flattened with dots."""
        rows = []
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            if isinstance(kind, type) and issubclass(kind, Config):
                rows += [(f"{f.name}.{n}", t, d, h) for n, t, d, h in kind.reference()]
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
            rows.append((f.name, _type_name(kind), repr(default), f.metadata.get("help", "")))
        return rows


def list_fields(config_cls: type[Config], prefix: str = "") -> set[str]:
    """Dotted names of the fields (nested sections included) whose value is a list or tuple, optional or not:
    the flags that take several values."""
    names = set()
    for name, kind in typing.get_type_hints(config_cls).items():
        options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
        for option in options:
            if typing.get_origin(option) in (list, tuple):
                names.add(prefix + name)
            elif isinstance(option, type) and issubclass(option, Config):
                names |= list_fields(option, prefix=f"{prefix}{name}.")
    return names


def merge_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply dotted overrides (``{"optim.lr": 1e-4}``) onto a nested mapping, returning a new one."""
    merged = json.loads(json.dumps(data))
    for dotted, value in overrides.items():
        node = merged
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(dotted, value, f"'{key}' is not a section")
        node[leaf] = value
    return merged


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """Check ``value`` against the annotation ``kind``; convert only lossless cases (int -> float, list -> tuple)."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(name, option, value)
            except ConfigError as exc:
                errors.append(exc.fix)
        raise ConfigError(name, value, f"expected {_type_name(kind)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(name, value, f"expected one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(name, value, f"expected a list of {_type_name(args[0]) if args else 'values'}")
        item = args[0] if args else Any
        items = [_coerce(f"{name}[{i}]", item, v) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(name, value, "expected a mapping")
        key_kind, value_kind = args or (Any, Any)
        return {_coerce(f"{name}.{k}", key_kind, k): _coerce(f"{name}.{k}", value_kind, v) for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, Config):
        if isinstance(value, kind):
            return value
        if not isinstance(value, dict):
            raise ConfigError(name, value, f"expected a section of {kind.__name__} fields")
        return kind.from_dict(value, prefix=name + ".")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):
        try:  # YAML reads "1e-5" as a string
            return float(value)
        except ValueError:
            pass
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(name, value, f"expected {_type_name(kind)}")
    return value
