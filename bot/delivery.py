"""Telling the user how the job goes and handing over the results.

One status message per job, edited as work advances (at most one edit per interval, "message is
not modified" ignored), the upload-video chat action kept alive while rendering, the storyboard
album with its buttons, and the finished video sent with everything Telegram can show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    ReplyParameters,
)
from telegram.constants import ChatAction, MessageLimit
from telegram.error import BadRequest, TelegramError

from bot import callbacks, channels
from bot.callbacks import Board, BoardAction
from bot.jobs import DONE, FAILED, UNDELIVERED, Job, JobStore, Rendered, SentVideo
from bot.pipeline_api import MakeResultLike, StoryboardLike
from bot.texts import sound_text, t
from pipeline.script.model import Script

log = logging.getLogger(__name__)

CAPTION_LIMIT = MessageLimit.CAPTION_LENGTH  # 1024
TEXT_LIMIT = MessageLimit.MAX_TEXT_LENGTH  # 4096
STAGES = ("analyze", "script", "narrate", "plan", "render", "fit", "upload")


def tg_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji can count 2)."""
    return len(text.encode("utf-16-le")) // 2


def trim(text: str, limit: int) -> str:
    """`text` cut to `limit` UTF-16 units, ending in an ellipsis when cut."""
    if tg_len(text) <= limit:
        return text
    out = text
    while tg_len(out) > limit - 1:
        out = out[: max(len(out) - max((tg_len(out) - limit) // 2, 1), 0)]
    return out.rstrip() + "…"


def caption_for(script: Script, credits: tuple[str, ...] = ()) -> str:
    """Title, hashtags and any footage credits within 1024 characters; hashtags are dropped from
    the end before the title is cut."""
    credit_line = ("🎥 " + ", ".join(credits)) if credits else ""
    tags = [h if h.startswith("#") else "#" + h for h in script.hashtags if h.strip("# ")]

    def build(title: str, tags: list[str]) -> str:
        parts = [title.strip()]
        if tags:
            parts.append(" ".join(tags))
        if credit_line:
            parts.append(credit_line)
        return "\n\n".join(p for p in parts if p)

    while tags and tg_len(build(script.title, tags)) > CAPTION_LIMIT:
        tags.pop()
    text = build(script.title, tags)
    if tg_len(text) > CAPTION_LIMIT:
        tail = tg_len(text) - tg_len(script.title.strip())
        text = build(trim(script.title.strip(), max(CAPTION_LIMIT - tail, 1)), [])
    return trim(text, CAPTION_LIMIT)


def script_text(script: Script) -> str:
    """The script as the user reads and edits it: title, one sentence per line, hashtags."""
    lines = [f"{'标题' if script.language == 'zh' else 'Title'}: {script.title}", ""]
    lines += list(script.spoken())
    if script.hashtags:
        lines += ["", " ".join(h if h.startswith("#") else "#" + h for h in script.hashtags)]
    return "\n".join(lines)


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit`, broken at line ends where possible."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if tg_len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        while tg_len(line) > limit:
            head = trim(line, limit)[:-1]
            parts.append(head)
            line = line[len(head) :]
        current = line
    if current:
        parts.append(current)
    return parts


def progress_bar(fraction: float, width: int = 10) -> str:
    filled = round(max(0.0, min(fraction, 1.0)) * width)
    return "▓" * filled + "░" * (width - filled) + f" {round(fraction * 100):3d}%"


def reply_to(job: Job) -> ReplyParameters | None:
    if job.reply_to is None:
        return None
    return ReplyParameters(message_id=job.reply_to, allow_sending_without_reply=True)


class StatusReporter:
    """The job's one status message: stage and progress bar, edited at most once per interval.

    `update` is called on the event loop (workers hop over with call_soon_threadsafe); a ticker
    task does the editing, so a burst of progress never floods the Bot API.
    """

    def __init__(self, bot: Bot, job: Job, interval: float = 3.0) -> None:
        self.bot = bot
        self.job = job
        self.interval = interval
        self.message_id = job.status_msg
        self.stage = ""
        self.fraction = 0.0
        self._shown = ""
        self._last_edit = 0.0
        self._last_action = 0.0
        self._ticker: asyncio.Task[None] | None = None

    def text(self) -> str:
        if not self.stage:
            return t(self.job.lang, "starting")
        label = t(self.job.lang, f"stage_{self.stage}")
        return f"{label}\n{progress_bar(self.fraction)}"

    def update(self, stage: str, fraction: float) -> None:
        self.stage = stage if stage in STAGES else self.stage or "analyze"
        self.fraction = fraction

    async def start(self) -> int | None:
        """Show "starting" (in the existing status message if there is one) and start ticking."""
        await self.show(self.text(), force=True)
        self._ticker = asyncio.create_task(self._tick(), name=f"status-{self.job.id}")
        return self.message_id

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            if self.stage in ("render", "fit", "upload") and now - self._last_action >= 4.5:
                # The chat action fades after ~5 s, so it is renewed while rendering lasts.
                self._last_action = now
                with contextlib.suppress(TelegramError):
                    await self.bot.send_chat_action(self.job.chat_id, ChatAction.UPLOAD_VIDEO)
            if now - self._last_edit >= self.interval:
                await self.show(self.text())

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def finish(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Stop ticking and leave `text` (with any buttons) as the status message's last word."""
        await self.stop()
        await self.show(text, force=True, markup=markup)

    async def show(
        self, text: str, force: bool = False, markup: InlineKeyboardMarkup | None = None
    ) -> None:
        """Put `text` in the status message (throttled unless forced); send one if it is gone."""
        if text == self._shown or (
            not force and time.monotonic() - self._last_edit < self.interval
        ):
            return
        self._last_edit = time.monotonic()
        if self.message_id is not None:
            try:
                await self.bot.edit_message_text(
                    text, self.job.chat_id, self.message_id, reply_markup=markup
                )
                self._shown = text
                return
            except BadRequest as exc:
                if "not modified" in str(exc).lower():
                    self._shown = text
                    return
                log.info("status message of job %s cannot be edited (%s)", self.job.id, exc)
            except TelegramError as exc:
                log.warning("editing the status of job %s failed: %s", self.job.id, exc)
                return
        try:
            msg = await self.bot.send_message(
                self.job.chat_id, text, reply_parameters=reply_to(self.job), reply_markup=markup
            )
        except TelegramError as exc:
            log.warning("sending the status of job %s failed: %s", self.job.id, exc)
            return
        self.message_id = msg.message_id
        self._shown = text


def feedback_keyboard(lang: str, job_id: str) -> InlineKeyboardMarkup:
    """📊 Feedback under a delivered video: collect its comments (/feedback)."""
    data = callbacks.encode(Board("feedback", job_id))
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(t(lang, "btn_feedback"), callback_data=data)]]
    )


def storyboard_keyboard(job: Job) -> InlineKeyboardMarkup:
    def button(action: BoardAction) -> InlineKeyboardButton:
        data = callbacks.encode(Board(action, job.id))
        return InlineKeyboardButton(t(job.lang, f"btn_{action}"), callback_data=data)

    return InlineKeyboardMarkup([[button("render")], [button("edit"), button("another")]])


async def send_storyboard(bot: Bot, job: Job, board: StoryboardLike) -> Message:
    """The keyframes as an album (one line under each), then the script with the three buttons."""
    shown = board.shown_in(job.lang)  # what each frame's shot shows, in the chat's language
    frames = [
        (f"{text}\n🎞 {shown[i]}" if i < len(shown) and shown[i] else text, path)
        for i, (text, path) in enumerate(board.frames)
        if Path(path).is_file()
    ]
    for start in range(0, len(frames), 10):  # an album holds at most 10 items
        chunk = frames[start : start + 10]
        media = [
            InputMediaPhoto(Path(path).read_bytes(), caption=trim(text, CAPTION_LIMIT))
            for text, path in chunk
        ]
        if len(media) == 1:
            await bot.send_photo(job.chat_id, media[0].media, caption=media[0].caption)
        else:
            await bot.send_media_group(job.chat_id, media)
    notes = board.warnings_in(job.lang)  # in the chat's language, not the video's
    if notes:
        await bot.send_message(job.chat_id, t(job.lang, "warnings", items="; ".join(notes)))
    body = trim(script_text(board.script), TEXT_LIMIT - 600)
    text = t(job.lang, "storyboard", title=board.script.title, script=body)
    heard = sound_text(job.lang, board.sounds)  # what happens to the footage's own sound
    if heard:
        text = f"{text}\n\n{trim(heard, 280)}"
    text = f"{text}\n\n{writer_text(job.lang, board.script)}"
    return await bot.send_message(
        job.chat_id,
        trim(text, TEXT_LIMIT),
        reply_markup=storyboard_keyboard(job),
        reply_parameters=reply_to(job),
    )


def writer_text(lang: str, script: Script) -> str:
    """Who wrote the script: the language model by name, or the built-in writer and why the
    configured model did not (its error's class leads `Script.fallback_reason`)."""
    if script.writer != "offline":
        return t(lang, "written_by_model", model=script.writer)
    if not script.fallback_reason:
        return t(lang, "written_offline")
    kind = script.fallback_reason.split(":", 1)[0]
    key = {"LMTimeout": "lm_timeout", "LMBadOutput": "lm_bad_output"}.get(kind, "lm_unavailable")
    return "✍️ " + t(lang, key)


def make_thumbnail(cover: str, out: str) -> str:
    """A JPEG of at most 320 px a side and under 200 kB, as sendVideo's thumbnail requires."""
    with Image.open(cover) as img:
        img = img.convert("RGB")
        img.thumbnail((320, 320))
        for quality in (85, 70, 50, 30):
            img.save(out, "JPEG", quality=quality)
            if Path(out).stat().st_size < 200_000:
                break
    return out


async def send_result(
    bot: Bot,
    job: Job,
    result: MakeResultLike,
    video: str,
    on_sent: Callable[[Message, str], None] | None = None,
    markup: InlineKeyboardMarkup | None = None,
) -> Message:
    """The finished video with cover, thumbnail, size, duration and caption; then the script.

    `on_sent` (the sent message, its caption) runs as soon as Telegram has the video, before
    the follow-up messages: marking
    the job done there keeps a restart in that moment from sending the video a second time.
    A follow-up message that fails is logged; the video is what counted."""
    credits = tuple(dict.fromkeys(f.credit for f in job.brief.footage if f.credit))
    thumb = make_thumbnail(result.cover, str(Path(job.job_dir) / "thumb.jpg"))
    caption = caption_for(result.script, credits)
    with open(video, "rb") as v, open(result.cover, "rb") as c, open(thumb, "rb") as th:
        sent = await bot.send_video(
            job.chat_id,
            v,
            duration=round(result.duration),
            width=result.width,
            height=result.height,
            supports_streaming=True,
            cover=c,
            thumbnail=th,
            caption=caption,
            reply_parameters=reply_to(job),
            reply_markup=markup,
            read_timeout=120,
            write_timeout=300,
        )
    if on_sent is not None:
        on_sent(sent, caption)
    try:
        for part in split_text(t(job.lang, "script_full", script=script_text(result.script))):
            await bot.send_message(job.chat_id, part)
        notes = result.warnings_in(job.lang)
        if notes:
            await bot.send_message(job.chat_id, t(job.lang, "warnings", items="; ".join(notes)))
    except TelegramError as exc:
        log.warning("job %s: the video was sent, a follow-up message failed: %s", job.id, exc)
    return sent


def version_of(cover: str) -> str:
    """The version folder ("v2", ...) a rendered file is in; "" for the job folder itself."""
    name = Path(cover).parent.name
    return name if name[:1] == "v" and name[1:].isdigit() else ""


def rendered_of(result: MakeResultLike, video: str, lang: str) -> Rendered:
    """What sending `video` needs, fixed before the first try so a refusal can be retried."""
    return Rendered(
        video=video,
        cover=result.cover,
        script=result.script,
        duration=result.duration,
        width=result.width,
        height=result.height,
        voice_engine=result.voice_engine,
        warnings=tuple(result.warnings_in(lang)),
    )


async def deliver_video(bot: Bot, store: JobStore, job: Job, rendered: Rendered) -> str:
    """Send the finished video; the job's new status: DONE once Telegram has it.

    When Telegram refuses it (a 400, 429s past the rate limiter's retries, a timeout) the job
    becomes undelivered with the video kept, for the "🔁 Send again" button; when the files
    themselves are gone it has failed for good."""
    sent = False

    def done(message: Message, caption: str) -> None:
        nonlocal sent
        # A reply to this message edits the version it shows (bot.edits): known before the
        # follow-up messages, so a quick reply finds it.
        store.add_video(job.chat_id, message.message_id, job.id, version_of(rendered.cover))
        video = message.video
        store.set_delivered(
            job.id,
            SentVideo(video.file_id, caption, round(rendered.duration), rendered.width,
                      rendered.height, rendered.cover) if video else None,
        )  # fmt: skip
        sent = True

    try:
        # 📢 Post / 🕒 Schedule, then 📊 Feedback: one keyboard under the video.
        publish = channels.video_keyboard(channels.ChannelStore.of(store), job).inline_keyboard
        comments = feedback_keyboard(job.lang, job.id).inline_keyboard
        markup = InlineKeyboardMarkup([*publish, *comments])
        await send_result(bot, job, rendered, rendered.video, on_sent=done, markup=markup)
    except TelegramError as exc:
        if sent:  # only a follow-up failed; the video is out
            return DONE
        log.warning("job %s: Telegram refused the video (%s); kept to send again", job.id, exc)
        store.set_undelivered(job.id, rendered, f"delivery:{type(exc).__name__}")
        return UNDELIVERED
    except OSError:
        log.exception("job %s: the rendered files cannot be read", job.id)
        store.set_status(job.id, FAILED, "delivery:missing")
        return FAILED
    return DONE
