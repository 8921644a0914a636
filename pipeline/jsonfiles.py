"""Files written whole or not at all, and frozen dataclasses to and from JSON-ready dicts.

`write_atomic` (and `atomic_path`, for files another program writes, like ffmpeg) put the new
content in a uniquely named temporary file in the target's folder, flush and fsync it, rename it
over the target (`os.replace`, atomic on POSIX) and fsync the folder so the rename survives a
power cut. A reader sees the old file or the new one, never half of one, and two writers never
share a temporary file. A failed write removes its temporary file and leaves the old one as it was.

`to_dict` / `from_dict` convert the pipeline's frozen dataclasses (tuples, optionals, literals,
nested dataclasses) with pydantic, which validates every field: a wrong value raises `DataError`
naming its path, like `segments[2].crop.w`. `Document` gives a frozen dataclass kept as one
JSON file (the edit plan, the script) its to/from JSON, save and load, raising its own error.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, cast

import pydantic

from pipeline.errors import ReelbotError

T = TypeVar("T")

StrPath = str | os.PathLike[str]


class DataError(ReelbotError):
    """Saved or received data does not fit its type; `field` is the dotted path of the culprit."""

    key = "data_invalid"

    def __init__(self, field: str, problem: str, what: str = "data") -> None:
        super().__init__(f"invalid {what}: {field}: {problem}", field=field, problem=problem)
        self.field = field
        self.problem = problem
        self.what = what


class JsonFileError(ReelbotError):
    """A JSON file cannot be read or is not JSON; `path` says which."""

    key = "data_invalid"

    def __init__(self, path: StrPath, problem: str) -> None:
        name = os.fspath(path)
        super().__init__(f"cannot read {name}: {problem}", path=name, problem=problem)
        self.path = name
        self.problem = problem


# --- atomic writes -----------------------------------------------------------------------------


def fsync_dir(path: StrPath) -> None:
    """Make the folder's entries (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: StrPath) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: StrPath, suffix: str = ".tmp") -> Iterator[Path]:
    """A fresh temporary path next to `path`, renamed over it when the block ends without error.

    For content another program writes (ffmpeg): `suffix` keeps the extension it infers the
    format from. The temporary file exists (empty) when the block starts. On an error it is
    removed and `path` is left as it was.
    """
    target = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)


def write_atomic(path: StrPath, data: bytes | str) -> None:
    """Replace `path`'s content with `data` (str is written as UTF-8), whole or not at all."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())


def dumps(obj: Any, indent: int | None = 1) -> str:
    """`obj` as JSON text (non-ASCII kept as is); dataclasses go through `to_dict`."""
    return json.dumps(_plain(obj), ensure_ascii=False, indent=indent)


def save_json(path: StrPath, obj: Any, indent: int | None = 1) -> None:
    """Write `obj` (JSON-ready data or a dataclass) to `path` atomically."""
    write_atomic(path, dumps(obj, indent))


def load_json(path: StrPath) -> Any:
    """The JSON value in `path`; raises `JsonFileError` when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise JsonFileError(path, f"not JSON: {exc.msg} at line {exc.lineno}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise JsonFileError(path, str(exc)) from exc


# --- dataclasses <-> dicts ---------------------------------------------------------------------


_adapters: dict[Any, pydantic.TypeAdapter[Any]] = {}


def _adapter(tp: Any) -> pydantic.TypeAdapter[Any]:
    # Building an adapter compiles a validator: one per type, kept for the process. Two threads
    # may build the same one at once; either result is the same, and dict writes are atomic.
    found = _adapters.get(tp)
    if found is None:
        found = _adapters[tp] = pydantic.TypeAdapter(tp)
    return found


def _plain(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__") and not isinstance(obj, type):
        return to_dict(obj)
    return obj


def to_dict(obj: Any, *, exclude: set[str] | None = None) -> dict[str, Any]:
    """A dataclass instance as JSON-ready data (tuples become lists, nested dataclasses dicts);
    `exclude` leaves top-level fields out."""
    data = _adapter(type(obj)).dump_python(obj, mode="json", exclude=exclude)
    return cast(dict[str, Any], data)


def to_data(obj: Any, tp: Any) -> Any:
    """`obj` of type `tp` (e.g. `tuple[Shot, ...]`) as JSON-ready data."""
    return _adapter(tp).dump_python(obj, mode="json")


def from_dict(tp: type[T], data: Any, *, what: str = "data") -> T:
    """An instance of `tp` (a dataclass, or a type like `tuple[Shot, ...]`) built from `data` and
    validated; raises `DataError` naming the first bad field's path. Numbers written as strings
    are accepted, unknown keys ignored (files from newer versions still load)."""
    try:
        return cast(T, _adapter(tp).validate_python(data, strict=False))
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        raise DataError(field_path(err["loc"]) or what, err["msg"], what) from exc


def field_path(loc: tuple[int | str, ...]) -> str:
    """pydantic's error location as a path: ("segments", 2, "crop", "w") -> segments[2].crop.w."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class Document:
    """Base of a frozen dataclass kept as one JSON file (the edit plan, the script).

    It brings `to_dict`, `to_json`, `save` (atomic) and the validated `from_dict`, `from_json`
    and `load`: anything wrong (not JSON, a bad field, what `validate` refuses) raises the
    class's `ERROR`, built from a field path and a problem, like `PlanError("segments[2]", ...)`.
    """

    __slots__ = ()
    WHAT: ClassVar[str] = "data"  # the field path of a problem with the file as a whole
    ERROR: ClassVar[Callable[[str, str], Exception]]

    def validate(self) -> None:
        """Check what the field types cannot; raise `ERROR`. Subclasses add their rules."""

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return dumps(self, indent)

    def save(self, path: StrPath) -> None:
        """Write it as JSON, atomically."""
        save_json(path, self, indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Build and validate one; a bad one raises `ERROR` naming the field."""
        try:
            doc = from_dict(cls, data, what=cls.WHAT)
        except DataError as exc:
            raise cls.ERROR(exc.field, exc.problem) from exc
        doc.validate()
        return doc

    @classmethod
    def from_json(cls, text: str) -> Self:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise cls.ERROR(cls.WHAT, f"not JSON: {exc.msg} at line {exc.lineno}") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: StrPath) -> Self:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise cls.ERROR(cls.WHAT, f"cannot read {os.fspath(path)}: {exc}") from exc
        return cls.from_json(text)
