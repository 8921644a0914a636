"""The durable job queue: one SQLite table of jobs, so queued and running work survives a restart.

A job is one user's video. It moves through steps run by the worker pool (`prepare`, `revise`,
`render`) and waits for the user between them (`review`, `editing`). Only the event loop thread
touches the store; workers report back through the loop.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipeline.brief import Brief
from pipeline.jsonfiles import dumps, from_dict
from pipeline.script.model import Script, validate_script

log = logging.getLogger(__name__)

QUEUED, RUNNING, REVIEW, EDITING = "queued", "running", "review", "editing"
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"
# Rendered, but Telegram refused the video: it is kept for "🔁 Send again". FAILED is a job
# whose work failed (its error is the pipeline's key, e.g. render_failed).
UNDELIVERED = "undelivered"
ACTIVE = (QUEUED, RUNNING)  # one of these per user at most
OPEN = (QUEUED, RUNNING, REVIEW, EDITING)  # the job still belongs to a live conversation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    chat_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    lang TEXT NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    brief TEXT NOT NULL,
    script TEXT,
    another INTEGER NOT NULL DEFAULT 0,
    job_dir TEXT NOT NULL,
    status_msg INTEGER,
    reply_to INTEGER,
    error TEXT,
    resumed INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    queued_at REAL NOT NULL,
    updated REAL NOT NULL,
    result TEXT,
    task_id TEXT,
    sent_video TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, queued_at);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs (user_id, created);
CREATE TABLE IF NOT EXISTS videos (
    chat_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
"""


@dataclass(frozen=True, slots=True)
class Job:
    """One row of the queue."""

    id: str
    chat_id: int
    user_id: int
    lang: str
    step: str  # prepare | revise | render
    status: str
    brief: Brief
    job_dir: str
    script: Script | None = None
    another: bool = False
    status_msg: int | None = None
    reply_to: int | None = None
    error: str | None = None
    resumed: bool = False
    created: float = 0.0
    # The engine's task for the current step (REELBOT_BROKER_URL set): a restarted bot follows
    # it instead of starting the step again. None with the embedded queue.
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A finished video as sendVideo needs it, kept in the job's row so that it can be sent
    again after Telegram refused it, also after a restart (a `MakeResultLike`)."""

    video: str  # the file to send (the re-encoded copy when the render was over the limit)
    cover: str
    script: Script
    duration: float
    width: int
    height: int
    voice_engine: str = ""
    warnings: tuple[str, ...] = ()  # already in the chat's language

    def warnings_in(self, language: str) -> tuple[str, ...]:
        return self.warnings

    def to_json(self) -> str:
        validate_script(self.script)
        return dumps(self, indent=None)

    @classmethod
    def from_json(cls, text: str) -> Rendered:
        """The stored video's facts, validated field by field (the script as a Script)."""
        rendered = from_dict(cls, json.loads(text), what="rendered video")
        validate_script(rendered.script)
        return rendered


@dataclass(frozen=True, slots=True)
class SentVideo:
    """The delivered video as Telegram knows it: posting it to a channel later sends this
    `file_id` (no second upload) with the same caption and picture facts."""

    file_id: str
    caption: str
    duration: int
    width: int
    height: int
    cover: str  # the cover in the job folder (sent along while the folder is kept)

    def to_json(self) -> str:
        return dumps(self, indent=None)

    @classmethod
    def from_json(cls, text: str) -> SentVideo:
        return from_dict(cls, json.loads(text), what="sent video")


def new_job_id() -> str:
    """A fresh job id, also the name of the job's folder."""
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


def brief_to_json(brief: Brief) -> str:
    return dumps(brief, indent=None)


def brief_from_json(text: str) -> Brief:
    """The stored brief, validated field by field (a `DataError` names a bad one)."""
    return from_dict(Brief, json.loads(text), what="job brief")


def script_to_json(script: Script) -> str:
    """The script as stored; checked first, so a bad one fails where it was made, not where
    the queue reads it back."""
    validate_script(script)
    return script.to_json(indent=None)


def script_from_json(text: str) -> Script:
    """The stored script, through `Script`'s own validation (`ScriptError` names a bad field)."""
    return Script.from_json(text)


class JobStore:
    """SQLite-backed jobs: submit, claim in order, move between states, recover after a crash."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = path  # bot.channels keeps its tables in the same file
        # isolation_level=None: autocommit; claims use an explicit IMMEDIATE transaction.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(jobs)")}
        if "result" not in columns:  # a store made before delivery failures were kept
            self._db.execute("ALTER TABLE jobs ADD COLUMN result TEXT")
        if "task_id" not in columns:  # a store made before the distributed engine
            self._db.execute("ALTER TABLE jobs ADD COLUMN task_id TEXT")
        if "sent_video" not in columns:  # a store made before channel publishing
            self._db.execute("ALTER TABLE jobs ADD COLUMN sent_video TEXT")

    def close(self) -> None:
        self._db.close()

    def _row(self, row: sqlite3.Row | None) -> Job | None:
        if row is None:
            return None
        return Job(
            id=row["id"],
            chat_id=row["chat_id"],
            user_id=row["user_id"],
            lang=row["lang"],
            step=row["step"],
            status=row["status"],
            brief=brief_from_json(row["brief"]),
            job_dir=row["job_dir"],
            script=script_from_json(row["script"]) if row["script"] else None,
            another=bool(row["another"]),
            status_msg=row["status_msg"],
            reply_to=row["reply_to"],
            error=row["error"],
            resumed=bool(row["resumed"]),
            created=row["created"],
            task_id=row["task_id"],
        )

    def submit(self, job: Job) -> Job:
        """Store a new job as queued (step prepare)."""
        now = time.time()
        self._db.execute(
            "INSERT INTO jobs (id, chat_id, user_id, lang, step, status, brief, job_dir,"
            " reply_to, created, queued_at, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (job.id, job.chat_id, job.user_id, job.lang, job.step, QUEUED,
             brief_to_json(job.brief), job.job_dir, job.reply_to, now, now, now),
        )  # fmt: skip
        got = self.get(job.id)
        assert got is not None
        return got

    def get(self, job_id: str) -> Job | None:
        return self._row(self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone())

    def claim_next(self) -> Job | None:
        """The oldest queued job, marked running; None when the queue is empty."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute(
                "SELECT id FROM jobs WHERE status=? ORDER BY queued_at LIMIT 1", (QUEUED,)
            ).fetchone()
            if row is not None:
                self._db.execute(
                    "UPDATE jobs SET status=?, updated=? WHERE id=?",
                    (RUNNING, time.time(), row["id"]),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return None if row is None else self.get(row["id"])

    def requeue(
        self, job_id: str, step: str, script: Script | None = None, another: bool = False
    ) -> None:
        """Send a job waiting for the user back to the queue for its next step."""
        now = time.time()
        # A new step is a new task: the old task id must not be followed again.
        self._db.execute(
            "UPDATE jobs SET status=?, step=?, script=COALESCE(?, script), another=?,"
            " queued_at=?, updated=?, error=NULL, task_id=NULL WHERE id=?",
            (QUEUED, step, script_to_json(script) if script else None, int(another), now, now,
             job_id),
        )  # fmt: skip

    def set_status(self, job_id: str, status: str, error: str | None = None) -> None:
        self._db.execute(
            "UPDATE jobs SET status=?, error=?, updated=? WHERE id=?",
            (status, error, time.time(), job_id),
        )

    def set_task(self, job_id: str, task_id: str) -> None:
        """Name the engine task about to carry the job's step (before it is sent, so a bot that
        stops between the two sends the same task again, which the workers run only once)."""
        self._db.execute(
            "UPDATE jobs SET task_id=?, updated=? WHERE id=?", (task_id, time.time(), job_id)
        )

    def handed_over(self, job_id: str) -> None:
        """The engine has the job's task: it is running as far as the queue is concerned."""
        self._db.execute(
            "UPDATE jobs SET status=?, updated=? WHERE id=? AND status=?",
            (RUNNING, time.time(), job_id, QUEUED),
        )

    def in_flight(self) -> list[Job]:
        """Jobs handed to the engine and not yet finished, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE status=? ORDER BY queued_at", (RUNNING,)
        ).fetchall()
        return [j for j in (self._row(r) for r in rows) if j is not None]

    def set_undelivered(self, job_id: str, rendered: Rendered, error: str) -> None:
        """The video is made but Telegram refused it: keep what resending it needs."""
        self._db.execute(
            "UPDATE jobs SET status=?, error=?, result=?, updated=? WHERE id=?",
            (UNDELIVERED, error, rendered.to_json(), time.time(), job_id),
        )

    def set_delivered(self, job_id: str, sent: SentVideo | None) -> None:
        """The video reached the chat: the job is done, and what Telegram returned for it is
        kept (one statement, so a done job always has its file_id when Telegram gave one)."""
        self._db.execute(
            "UPDATE jobs SET status=?, error=NULL, sent_video=?, updated=? WHERE id=?",
            (DONE, sent.to_json() if sent else None, time.time(), job_id),
        )

    def sent_video(self, job_id: str) -> SentVideo | None:
        """The delivered video's file_id and caption (None before delivery)."""
        row = self._db.execute("SELECT sent_video FROM jobs WHERE id=?", (job_id,)).fetchone()
        return SentVideo.from_json(row["sent_video"]) if row and row["sent_video"] else None

    def rendered(self, job_id: str) -> Rendered | None:
        """The kept video of an undelivered job (None for any other job)."""
        row = self._db.execute(
            "SELECT result FROM jobs WHERE id=? AND status=?", (job_id, UNDELIVERED)
        ).fetchone()
        return Rendered.from_json(row["result"]) if row and row["result"] else None

    def set_script(self, job_id: str, script: Script) -> None:
        self._db.execute(
            "UPDATE jobs SET script=?, updated=? WHERE id=?",
            (script_to_json(script), time.time(), job_id),
        )

    def add_video(self, chat_id: int, message_id: int, job_id: str, version: str) -> None:
        """A delivered video message of job `job_id` (`version`: "" or "v2", ...), so a
        reply to it can edit that version (`bot.edits`)."""
        self._db.execute(
            "INSERT OR REPLACE INTO videos (chat_id, message_id, job_id, version) VALUES (?,?,?,?)",
            (chat_id, message_id, job_id, version),
        )

    def video(self, chat_id: int, message_id: int) -> tuple[Job, str] | None:
        """The job and version a delivered video message shows, or None."""
        row = self._db.execute(
            "SELECT job_id, version FROM videos WHERE chat_id=? AND message_id=?",
            (chat_id, message_id),
        ).fetchone()
        job = self.get(row["job_id"]) if row is not None else None
        return (job, row["version"]) if job is not None and row is not None else None

    def set_reply_to(self, job_id: str, message_id: int | None) -> None:
        self._db.execute("UPDATE jobs SET reply_to=? WHERE id=?", (message_id, job_id))

    def set_status_msg(self, job_id: str, message_id: int | None) -> None:
        self._db.execute("UPDATE jobs SET status_msg=? WHERE id=?", (message_id, job_id))

    def position(self, job_id: str) -> int:
        """How many jobs will run before this one (running jobs included)."""
        row = self._db.execute("SELECT queued_at FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            return 0
        ahead = self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE id<>? AND (status=? OR (status=? AND queued_at<?))",
            (job_id, RUNNING, QUEUED, row["queued_at"]),
        ).fetchone()
        return int(ahead[0])

    def queued(self) -> list[Job]:
        """Jobs waiting for a worker, in the order they will run."""
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE status=? ORDER BY queued_at", (QUEUED,)
        ).fetchall()
        return [j for j in (self._row(r) for r in rows) if j is not None]

    def latest_for(self, user_id: int, chat_id: int, statuses: tuple[str, ...]) -> Job | None:
        """The user's newest job in this chat with one of `statuses`."""
        marks = ",".join("?" * len(statuses))
        row = self._db.execute(
            f"SELECT * FROM jobs WHERE user_id=? AND chat_id=? AND status IN ({marks})"
            " ORDER BY created DESC LIMIT 1",
            (user_id, chat_id, *statuses),
        ).fetchone()
        return self._row(row)

    def active_for(self, user_id: int) -> Job | None:
        """The user's queued or running job, in any chat."""
        row = self._db.execute(
            "SELECT * FROM jobs WHERE user_id=? AND status IN (?,?) LIMIT 1",
            (user_id, *ACTIVE),
        ).fetchone()
        return self._row(row)

    def count_since(self, user_id: int, since: float) -> int:
        """Jobs the user started since `since` (epoch seconds): the per-hour limit."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM jobs WHERE user_id=? AND created>=?", (user_id, since)
        ).fetchone()
        return int(row[0])

    def recover(self) -> list[Job]:
        """After a restart: jobs that were running go back to the queue, marked resumed."""
        rows = self._db.execute("SELECT id FROM jobs WHERE status=?", (RUNNING,)).fetchall()
        for row in rows:
            self._db.execute(
                "UPDATE jobs SET status=?, resumed=1, updated=? WHERE id=?",
                (QUEUED, time.time(), row["id"]),
            )
        return self.queued()

    def cleanup(
        self,
        jobs_root: str,
        keep_days: float,
        keep_total_bytes: int,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> list[str]:
        """Remove finished jobs' folders and analysis cache entries unused for `keep_days`, then
        the oldest of both while together they exceed `keep_total_bytes`.

        A folder's age is its last activity (the newest file in it: an upload into a draft
        does not change the folder's own mtime). Folders of open jobs are never removed, nor
        those of undelivered videos before `keep_days`; folders with no row (a conversation
        that was abandoned) count as finished. The cache (`cache_dir`, the footage analysis's
        cross-job cache) is counted in the total and evicted by last use.
        """
        cutoff = time.time() - keep_days * 86400
        # A storyboard nobody answered for that long is given up.
        self._db.execute(
            "UPDATE jobs SET status=?, updated=? WHERE status IN (?,?) AND updated<?",
            (CANCELLED, time.time(), REVIEW, EDITING, cutoff),
        )
        # A video nobody asked to be sent again for that long is given up too.
        self._db.execute(
            "UPDATE jobs SET status=?, error=?, updated=? WHERE status=? AND updated<?",
            (FAILED, "delivery:expired", time.time(), UNDELIVERED, cutoff),
        )
        root = Path(jobs_root)
        kept = (*OPEN, UNDELIVERED)
        open_ids = {
            r["id"]
            for r in self._db.execute(
                f"SELECT id FROM jobs WHERE status IN ({','.join('?' * len(kept))})", kept
            )
        }
        # (last activity, size, path, is a job folder)
        items: list[tuple[float, int, Path, bool]] = []
        if root.is_dir():
            for d in root.iterdir():
                if d.is_dir() and d.name not in open_ids:
                    used, size = _activity(d)
                    items.append((used, size, d, True))
        if cache_dir is not None:
            from pipeline.footage.cache import AnalysisCache

            items += [(e.used, e.size, e.path, False) for e in AnalysisCache(cache_dir).entries()]
        total = sum(size for _, size, _, _ in items)
        removed = []
        recent = time.time() - 3600  # a folder touched this hour may be a draft being filled
        evicted = 0
        for used, size, path, folder in sorted(items, key=lambda f: f[0]):
            over = total > keep_total_bytes and (used < recent or not folder)
            if used < cutoff or over:
                if folder:
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path.name)
                else:
                    path.unlink(missing_ok=True)
                    evicted += 1
                total -= size
        if evicted:
            log.info("evicted %d analysis cache entries", evicted)
        if removed:
            log.info("removed %d old job folders", len(removed))
        return removed


def _activity(folder: Path) -> tuple[float, int]:
    """A folder's last activity (its own mtime or its newest file's) and its size in bytes."""
    used, size = folder.stat().st_mtime, 0
    for f in folder.rglob("*"):
        try:
            st = f.stat()
        except OSError:
            continue
        used = max(used, st.st_mtime)
        if f.is_file():
            size += st.st_size
    return used, size
