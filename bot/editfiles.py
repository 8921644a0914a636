"""The confirmed edit of a job, as the worker that applies it reads it: telegram-free, so both
the embedded queue (`bot.workers`) and an engine worker (`bot.engine`) run the `edit` step.

`bot.edits` keeps each understood reply in the job folder (`edits/<n>.json`), renames it to
`<n>.taken` when ✅ is pressed and notes its number in `edits/confirmed.json`; the job folder is
shared with the workers, so the request travels with the job, not in the task.
"""

from __future__ import annotations

import threading
from pathlib import Path

from bot.pipeline_api import Editing, MakeResultLike, Pipeline, ProgressFn
from pipeline.errors import EditError
from pipeline.jsonfiles import from_dict, load_json
from pipeline.make.editrequest import EditRequest

EDITS_DIR = "edits"
CONFIRMED = "confirmed.json"


def confirmed_request(job_dir: str) -> EditRequest:
    """The edit the user confirmed last for the job in `job_dir`."""
    folder = Path(job_dir) / EDITS_DIR
    number = int(load_json(folder / CONFIRMED)["number"])
    data = load_json(folder / f"{number}.taken")
    return from_dict(EditRequest, {k: v for k, v in data.items() if k != "video_msg"},
                     what="edit request")  # fmt: skip


def apply_confirmed(
    pipeline: Pipeline, job_dir: str, progress: ProgressFn, cancel: threading.Event
) -> MakeResultLike:
    """The worker's part: apply the job's confirmed edit (a new version, rendered)."""
    request = confirmed_request(job_dir)
    if not isinstance(pipeline, Editing):
        raise EditError("this pipeline cannot edit a delivered video")
    return pipeline.edit(job_dir, request, progress, cancel)
