"""Typed options: the one mechanism behind every setting a user gives.

Run configs (:mod:`modalens.training.config`), attribution options
(:class:`~modalens.attribution.AttributionOptions`), benchmark settings
(:class:`~modalens.validation.faithfulness.FaithfulnessSettings`) and the keyword options of
each API function a command calls are pydantic models. This module holds what they share:

- :class:`ConfigValueError`: what a value check raises inside a pydantic validator;
- :func:`validation_error`: the one-line :class:`~modalens.errors.SpecError` of a pydantic
  ``ValidationError`` (what is wrong, which key or option, how to fix it);
- :func:`checked`: a field validator from a library check that raises ``SpecError``;
- :class:`Options`: a frozen model whose construction raises that error;
- :func:`option_fields`: the options of a model, or of an API function (defaults from its
  signature, descriptions from its docstring's ``Args:`` section), as pydantic fields.

The command line builds its options from these (:mod:`modalens.cliargs`): a default is written
once, in the library.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from .errors import SpecError

_O = TypeVar("_O", bound="Options")


class ConfigValueError(ValueError):
    """A bad value, raised inside a validator: ``{key}`` in the message is replaced by the
    dotted key (or option name), and ``fix`` says what to write instead."""

    def __init__(self, message: str, fix: str = "fix it") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def checked(check: Callable[[Any], Any], keep: bool = False) -> BeforeValidator:
    """A pydantic validator from a library check that raises :class:`SpecError` (its message
    and fix are kept, the place becomes the option's). The value is the check's result, or,
    with ``keep``, the value as given (a mapping as a dict)."""

    def validate(value: Any) -> Any:
        try:
            out = check(value)
        except SpecError as exc:
            raise ConfigValueError(exc.what, exc.fix or "fix it") from None
        if not keep:
            return out
        return dict(value) if isinstance(value, Mapping) else value

    return BeforeValidator(validate)


def _section_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class of the section holding the key at ``loc`` (None: free-form)."""
    cls = root
    for part in loc[:-1]:
        info = cls.model_fields.get(str(part))
        sub = info.annotation if info is not None else None
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            return None
        cls = sub
    return cls


def validation_error(
    exc: ValidationError,
    root: type[BaseModel],
    where: Callable[[str], str],
    noun: str = "config key",
) -> SpecError:
    """The one-line :class:`SpecError` of the first problem pydantic found.

    Args:
        exc: the validation error of ``root``.
        root: the model validated (unknown keys list the allowed ones of their section).
        where: how the error names the place of a dotted key (``key 'train.lr' in FILE``,
            ``draws= / --draws``).
        noun: what a key is called (``config key``, ``attribution option``).

    Returns:
        The error: what is wrong, where, and how to fix it.
    """
    err = exc.errors()[0]
    loc = tuple(err.get("loc", ()))
    key = ".".join(str(p) for p in loc) or noun
    error_type = err.get("type", "")
    cause = (err.get("ctx") or {}).get("error")
    if error_type == "extra_forbidden":
        section = _section_at(root, loc)
        allowed = ", ".join(sorted(section.model_fields)) if section is not None else ""
        return SpecError(f"unknown {noun} {key!r}", where(key), f"allowed keys here: {allowed}")
    if error_type in ("model_type", "model_attributes_type", "dict_type"):
        return SpecError(f"{noun} {key!r} must be a mapping", where(key), "see configs/demo.yaml")
    if isinstance(cause, ConfigValueError):
        return SpecError(cause.message.replace("{key}", key), where(key), cause.fix)
    return SpecError(f"{key}: {err.get('msg', 'invalid value')}", where(key), "fix it")


class Options(BaseModel):
    """A frozen, validated set of options; a bad value is a one-line :class:`SpecError`.

    Subclasses set :attr:`noun` (how errors call an option) and may override :meth:`where`
    (how errors name its place, e.g. with its command-line flag).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    #: what errors call one of these options
    noun: ClassVar[str] = "option"

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            cls = type(self)
            raise validation_error(exc, cls, cls.where, cls.noun) from None

    @classmethod
    def where(cls, key: str) -> str:
        """How an error names option ``key`` (``key=``)."""
        return f"{key}="

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments (their validated values, not dumped)."""
        return {name: getattr(self, name) for name in type(self).model_fields}

    def replace(self: _O, **changes: Any) -> _O:
        """A copy with ``changes`` applied, validated like a new object.

        Raises:
            SpecError: an unknown option or an invalid value.
        """
        return type(self)(**{**self.as_kwargs(), **changes})


def shown(value: Any) -> str:
    """A default as the command line writes it (sequences comma-separated)."""
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


_ARG = re.compile(r"^(\*{0,2}\w+)(?: \([^)]*\))?:\s*(.*)$")
_ROLE = re.compile(r":\w+:`~?\.*([^`<]*?)(?: <[^>]*>)?`")


def _plain(text: str) -> str:
    """Docstring markup as plain text (``:class:`~.x.Y``` -> ``Y``, ````a```` -> ``a``)."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return " ".join(text.replace("``", "").split())


def argument_docs(fn: Callable[..., Any]) -> dict[str, str]:
    """The descriptions of ``fn``'s parameters in its Google-style ``Args:`` section."""
    lines = (inspect.getdoc(fn) or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Args:"), None)
    if start is None:
        return {}
    out: dict[str, str] = {}
    indent, name = None, None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        match = _ARG.match(line.strip()) if depth == indent else None
        if match:
            name = match.group(1).lstrip("*")
            out[name] = match.group(2)
        elif name is not None:
            out[name] += " " + line.strip()
    return {k: _plain(v).rstrip(".") for k, v in out.items()}


@functools.cache
def _signature_fields(fn: Callable[..., Any]) -> dict[str, FieldInfo]:
    docs = argument_docs(fn)
    return {
        name: FieldInfo(default=param.default, description=docs.get(name, ""))
        for name, param in inspect.signature(fn).parameters.items()
        if param.default is not param.empty
        and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
    }


def option_fields(source: type[BaseModel] | Callable[..., Any]) -> dict[str, FieldInfo]:
    """The options ``source`` defines, each with its default and description.

    Args:
        source: an options model (its fields), or an API function: its keyword parameters
            with a default, described by its docstring's ``Args:`` section.

    The command line builds a command's options from the sources of the functions it calls
    (:mod:`modalens.cliargs`), so no default is written twice.
    """
    if isinstance(source, type) and issubclass(source, BaseModel):
        return dict(source.model_fields)
    return dict(_signature_fields(cast(Callable[..., Any], source)))


def default_of(source: type[BaseModel] | Callable[..., Any], name: str) -> Any:
    """The default of option ``name`` of ``source`` (None where it has none)."""
    info = option_fields(source)[name]
    return None if info.is_required() else info.get_default(call_default_factory=True)
