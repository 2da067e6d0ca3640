"""Building blocks of the argument tree: the one-line usage error, enum and JSON values,
repeatable `K=V` flags, command groups (docs/operations.md §3)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

E = TypeVar("E", bound=StrEnum)

PROG = "groundstation"


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def enum_choice(enum_type: type[E]) -> Callable[[str], E]:
    """Accept an enum value in any case (`GLOBAL`, `global`; `-` for `_`)."""
    allowed = ", ".join(member.value for member in enum_type)

    def parse(raw: str) -> E:
        try:
            return enum_type(raw.strip().lower().replace("-", "_"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid choice {raw!r} (choose from {allowed})"
            ) from None

    return parse


def json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"not valid JSON ({exc.msg} at position {exc.pos})"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"key\": \"value\"}'")
    return value


class KeyValues(argparse.Action):
    """A repeatable `K=V` flag gathered into one dict: split at the first `=` (the value
    may hold more), the key non-empty, each key given once."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        raw = str(values)
        key, separator, value = raw.partition("=")
        if not separator or not key.strip():
            parser.error(f"argument {option_string}: expected KEY=VALUE, got {raw!r}")
        gathered: dict[str, str] = dict(getattr(namespace, self.dest, None) or {})
        if key in gathered:
            parser.error(f"argument {option_string}: {key!r} given twice")
        gathered[key] = value
        setattr(namespace, self.dest, gathered)


def metavar(enum_type: type[StrEnum]) -> str:
    return "{" + ",".join(member.value for member in enum_type) + "}"


def group(
    subparsers: argparse._SubParsersAction[Parser], name: str, help_text: str
) -> argparse._SubParsersAction[Parser]:
    group = subparsers.add_parser(name, help=help_text, description=help_text)
    return group.add_subparsers(title="commands", dest=f"{name}_command", required=True,
                                metavar="COMMAND")


if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[Parser]
else:  # not subscriptable at run time
    Subparsers = argparse._SubParsersAction


def add_json_flag(parser: argparse.ArgumentParser, what: str = "one JSON array") -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what}")


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_password_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password", help="the password (prefer GROUNDSTATION_ADMIN_PASSWORD "
                        "or the prompt: flags are visible in the process list)")
