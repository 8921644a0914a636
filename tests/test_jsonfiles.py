"""Atomic writes and dataclass JSON: round trips, field paths in errors, no torn or stray files."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import pytest

from pipeline import jsonfiles
from pipeline.errors import PlanError
from pipeline.jsonfiles import (
    DataError,
    Document,
    JsonFileError,
    atomic_path,
    from_dict,
    load_json,
    save_json,
    to_dict,
    write_atomic,
)
from pipeline.plan import EditPlan


@dataclass(frozen=True, slots=True)
class Box:
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    box: Box
    end: Box | None = None
    tags: tuple[str, ...] = ()
    kind: Literal["a", "b"] = "a"


@dataclass(frozen=True, slots=True)
class Whole:
    parts: tuple[Part, ...]
    spans: tuple[tuple[float, float], ...] = ()
    note: str | None = None


WHOLE = Whole(
    parts=(
        Part("one", Box(0.0, 0.1, 0.5, 0.5)),
        Part("两", Box(0.1, 0.2, 0.3, 0.4), end=Box(0.2, 0.2, 0.3, 0.4), tags=("x", "y"), kind="b"),
    ),
    spans=((0.0, 1.5), (1.75, 3.0)),
    note="前言",
)


def test_nested_frozen_dataclasses_round_trip_through_json() -> None:
    data = to_dict(WHOLE)
    text = json.dumps(data, ensure_ascii=False)
    back = from_dict(Whole, json.loads(text))
    assert back == WHOLE
    assert isinstance(back.parts, tuple) and isinstance(back.spans[0], tuple)
    assert back.parts[0].end is None and back.parts[1].end == Box(0.2, 0.2, 0.3, 0.4)
    assert data["parts"][1]["box"] == {"x": 0.1, "y": 0.2, "w": 0.3, "h": 0.4}


def test_a_wrong_type_deep_inside_is_named_by_its_path() -> None:
    data = to_dict(WHOLE)
    data["parts"][1]["box"]["w"] = "wide"
    with pytest.raises(DataError) as err:
        from_dict(Whole, data, what="whole")
    assert err.value.field == "parts[1].box.w"
    assert "parts[1].box.w" in str(err.value) and err.value.key == "data_invalid"
    data = to_dict(WHOLE)
    data["parts"][0]["kind"] = "c"
    with pytest.raises(DataError) as err:
        from_dict(Whole, data)
    assert err.value.field == "parts[0].kind"
    data = to_dict(WHOLE)
    del data["parts"][0]["box"]
    with pytest.raises(DataError) as err:
        from_dict(Whole, data)
    assert err.value.field == "parts[0].box"


def test_a_plan_error_keeps_the_field_path() -> None:
    plan = {
        "sources": [],
        "segments": [
            {"source": 0, "start": 0, "end": 1, "crop": {"x": 0, "y": 0, "w": 1, "h": 1}},
            {"source": 0, "start": 1, "end": 2, "crop": {"x": 0, "y": 0, "w": "all", "h": 1}},
        ],
    }
    with pytest.raises(PlanError) as err:
        EditPlan.from_dict(plan)
    assert err.value.field == "segments[1].crop.w" and err.value.key == "plan_invalid"


def test_save_and_load_json(tmp_path: Path) -> None:
    path = tmp_path / "whole.json"
    save_json(path, WHOLE)
    assert from_dict(Whole, load_json(path)) == WHOLE
    save_json(path, {"汉字": [1, 2]})
    assert "汉字" in path.read_text(encoding="utf-8") and load_json(path) == {"汉字": [1, 2]}
    path.write_text("{half", encoding="utf-8")
    with pytest.raises(JsonFileError, match="not JSON"):
        load_json(path)
    with pytest.raises(JsonFileError):
        load_json(tmp_path / "missing.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    write_atomic(path, '{"old": true}')

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jsonfiles.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        save_json(path, {"new": True})
    assert path.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_an_error_while_writing_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.cube"
    write_atomic(path, b"old")
    with pytest.raises(RuntimeError), atomic_path(path, suffix=".cube") as tmp:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("the writer died")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.cube"]


def test_a_refused_rename_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a full disk or a read-only folder does at the last step (tests run as root, so a
    # chmod'ed folder would not refuse anything).
    write_atomic(tmp_path / "a.json", "1")

    def refuse(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(tmp_path / "a.json", "2")
    assert (tmp_path / "a.json").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def _hammer(path: str, value: int, rounds: int) -> None:
    for _ in range(rounds):
        save_json(path, {"writer": value, "payload": [value] * 5000})


@pytest.mark.slow
def test_concurrent_writers_never_leave_a_torn_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    save_json(path, {"writer": -1, "payload": []})
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(path), i, 40)) for i in range(3)]
    torn: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            text = path.read_text(encoding="utf-8")
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                torn.append(text[:80])
                continue
            if data["payload"] != [data["writer"]] * len(data["payload"]):
                torn.append(text[:80])

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=_hammer, args=(str(path), 10 + i, 40)) for i in range(3)]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for p in procs:
        p.join(timeout=60)
    stop.set()
    reader.join(timeout=10)
    assert all(p.exitcode == 0 for p in procs)
    assert torn == []
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]
    assert load_json(path)["writer"] in {0, 1, 2, 10, 11, 12}


class _NoteError(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


@dataclass(frozen=True, slots=True)
class _Note(Document):
    WHAT: ClassVar[str] = "note"
    ERROR: ClassVar[Callable[[str, str], Exception]] = _NoteError

    words: tuple[str, ...]
    seconds: float = 1.0

    def validate(self) -> None:
        if self.seconds <= 0:
            raise _NoteError("seconds", "must be positive")


def test_a_document_round_trips_and_every_problem_is_its_own_error(tmp_path: Path) -> None:
    note = _Note(("a", "b"), 2.5)
    path = tmp_path / "note.json"
    note.save(path)
    assert _Note.load(path) == note == _Note.from_json(note.to_json())
    assert note.to_dict() == {"words": ["a", "b"], "seconds": 2.5}
    problems = {
        "not json": lambda: _Note.from_json("{"),
        "bad field": lambda: _Note.from_dict({"words": ["a"], "seconds": "soon"}),
        "refused": lambda: _Note.from_dict({"words": [], "seconds": -1}),
        "unreadable": lambda: _Note.load(tmp_path / "missing.json"),
    }
    fields = {}
    for name, make in problems.items():
        with pytest.raises(_NoteError) as err:
            make()
        fields[name] = err.value.field
    assert fields == {"not json": "note", "bad field": "seconds", "refused": "seconds",
                      "unreadable": "note"}  # fmt: skip
