"""A fake Telegram Bot API server on 127.0.0.1 for end-to-end tests of the bot.

A real python-telegram-bot `Application` talks to it over HTTP (`base_url`/`base_file_url`).
Tests inject updates (messages, button presses, voice notes, albums, documents) into the
long-poll queue, then wait for the calls the bot makes and inspect them, uploaded bytes included.
Errors (429 with retry_after, 400) can be armed per method.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.fake_bot_api import BOT, TOKEN, BadRequest, BotAPIServer, Call

__all__ = ["BOT", "TOKEN", "BadRequest", "Call", "FakeTelegram", "user"]


class FakeTelegram(BotAPIServer):
    """The fake server plus helpers to play users and wait for what the bot does."""

    async def message(
        self,
        user: dict[str, Any],
        chat_id: int,
        reply_to: dict[str, Any] | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        """A message from `user` in `chat_id`; `text` starting with / becomes a command."""
        msg: dict[str, Any] = {
            "message_id": next(self._msg_ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": user,
            **content,
        }
        text = content.get("text")
        if isinstance(text, str) and text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        self.messages[(chat_id, msg["message_id"])] = msg
        await self.push({"message": msg})
        return msg

    async def automatic_forward(self, group: int, post: dict[str, Any]) -> dict[str, Any]:
        """The discussion group's automatic copy of channel post `post` (Telegram makes it)."""
        channel = post["chat"]
        msg: dict[str, Any] = {
            "message_id": next(self._msg_ids),
            "date": int(time.time()),
            "chat": self.chat(group),
            "from": {"id": 777000, "is_bot": False, "first_name": "Telegram"},
            "sender_chat": channel,
            "is_automatic_forward": True,
            "forward_origin": {"type": "channel", "chat": channel,
                               "message_id": post["message_id"], "date": post["date"]},
            **{k: post[k] for k in ("video", "caption", "text") if k in post},
        }  # fmt: skip
        self.messages[(group, msg["message_id"])] = msg
        await self.push({"message": msg})
        return msg

    async def comment(
        self, user: dict[str, Any], group: int, thread: dict[str, Any], text: str
    ) -> dict[str, Any]:
        """`user` comments under a channel post: a reply in the forward's thread."""
        return await self.message(
            user, group, reply_to=thread, text=text, message_thread_id=thread["message_id"]
        )

    async def forward_from_channel(
        self, user: dict[str, Any], chat_id: int, channel: int
    ) -> dict[str, Any]:
        """`user` forwards one of `channel`'s posts to the bot."""
        origin = {"type": "channel", "chat": self.chat(channel), "message_id": 5,
                  "date": int(time.time())}  # fmt: skip
        return await self.message(user, chat_id, text="a post", forward_origin=origin)

    async def reaction_count(self, chat_id: int, message_id: int, total: int) -> None:
        """Anonymous reaction totals on a message, as administrators are told."""
        reactions = [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": total}]
        counts = {"chat": self.chat(chat_id), "message_id": message_id,
                  "date": int(time.time()), "reactions": reactions}  # fmt: skip
        await self.push({"message_reaction_count": counts})

    async def text(
        self, user: dict[str, Any], chat_id: int, text: str, reply_to: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.message(user, chat_id, reply_to=reply_to, text=text)

    async def video(
        self,
        user: dict[str, Any],
        chat_id: int,
        path: str | Path,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        as_document: bool = False,
        size: int | None = None,
        size_known: bool = True,
        width: int = 320,
        height: int = 180,
        duration: int = 2,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A video (or a video sent as a file) from `path`; `size` overrides the file's size,
        and with `size_known=False` the message does not say it (getFile still knows)."""
        data = Path(path).read_bytes()
        ref = self.store_file(data, size)
        if not size_known:
            del ref["file_size"]
        name = Path(path).name
        content: dict[str, Any] = {}
        if as_document:
            content["document"] = {**ref, "file_name": name, "mime_type": "video/mp4"}
        else:
            content["video"] = {
                **ref,
                "width": width,
                "height": height,
                "duration": duration,
                "file_name": name,
                "mime_type": "video/mp4",
            }
        if caption:
            content["caption"] = caption
        if media_group_id:
            content["media_group_id"] = media_group_id
        return await self.message(user, chat_id, reply_to=reply_to, **content)

    async def photo(
        self,
        user: dict[str, Any],
        chat_id: int,
        path: str | Path,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        ref = self.store_file(Path(path).read_bytes())
        content: dict[str, Any] = {"photo": [{**ref, "width": 320, "height": 240}]}
        if caption:
            content["caption"] = caption
        if media_group_id:
            content["media_group_id"] = media_group_id
        return await self.message(user, chat_id, reply_to=reply_to, **content)

    async def document(
        self,
        user: dict[str, Any],
        chat_id: int,
        path: str | Path,
        mime_type: str,
        *,
        file_name: str | None = None,
    ) -> dict[str, Any]:
        """Any file sent as a file ("document"): its name and MIME type as the client states
        them (Telegram keeps both as sent, odd characters included)."""
        ref = self.store_file(Path(path).read_bytes())
        item = {**ref, "file_name": file_name or Path(path).name, "mime_type": mime_type}
        return await self.message(user, chat_id, document=item)

    async def voice(
        self, user: dict[str, Any], chat_id: int, path: str | Path, duration: int = 3
    ) -> dict[str, Any]:
        ref = self.store_file(Path(path).read_bytes())
        voice = {**ref, "duration": duration, "mime_type": "audio/ogg"}
        return await self.message(user, chat_id, voice=voice)

    async def audio(
        self,
        user: dict[str, Any],
        chat_id: int,
        path: str | Path,
        *,
        as_document: bool = False,
        mime_type: str = "audio/mpeg",
        duration: int = 5,
    ) -> dict[str, Any]:
        """An audio file (a song, sent as music or as a file), not a voice note."""
        ref = self.store_file(Path(path).read_bytes())
        item = {**ref, "file_name": Path(path).name, "mime_type": mime_type}
        if as_document:
            return await self.message(user, chat_id, document=item)
        return await self.message(user, chat_id, audio={**item, "duration": duration})

    async def sticker(
        self, user: dict[str, Any], chat_id: int, kind: str = "static"
    ) -> dict[str, Any]:
        """A sticker: `kind` static (WebP), animated (TGS) or video (WebM)."""
        ref = self.store_file(b"RIFF\0\0\0\0WEBP" if kind == "static" else b"\0" * 64)
        sticker = {
            **ref,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": kind == "animated",
            "is_video": kind == "video",
            "emoji": "😺",
        }
        return await self.message(user, chat_id, sticker=sticker)

    async def press(self, user: dict[str, Any], message: dict[str, Any], data: str) -> None:
        """`user` taps the inline button with callback `data` under the bot's `message`."""
        await self.push(
            {
                "callback_query": {
                    "id": str(next(self._ids)),
                    "from": user,
                    "chat_instance": "ci",
                    "message": message,
                    "data": data,
                }
            }
        )

    # -- waiting -----------------------------------------------------------------------------

    async def wait_for(
        self,
        method: str | tuple[str, ...],
        where: Callable[[Call], bool] = lambda c: True,
        timeout: float = 60.0,  # the real pipeline loads voices and whisper on its first job
        since: int = 0,
    ) -> Call:
        """The first call of `method` (or of any of several) from index `since` that satisfies
        `where`."""
        methods = (method,) if isinstance(method, str) else method
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                for call in self.calls[since:]:
                    if call.method in methods and where(call):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.text[:60]) for c in self.calls[since:]]
                    raise AssertionError(f"no {method} call in {timeout} s; calls: {seen}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)

    def sent(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or c.chat_id == chat_id)
        ]

    def button_message(self, chat_id: int, prefix: str) -> tuple[dict[str, Any], str]:
        """The newest bot message in `chat_id` with a button whose data starts with `prefix`."""
        for (chat, _), msg in sorted(self.messages.items(), key=lambda kv: -kv[0][1]):
            if chat != chat_id or msg.get("from") != BOT:
                continue
            for row in (msg.get("reply_markup") or {}).get("inline_keyboard", []):
                for b in row:
                    if str(b.get("callback_data", "")).startswith(prefix):
                        return msg, b["callback_data"]
        raise AssertionError(f"no button {prefix!r} in chat {chat_id}")


def user(
    uid: int, name: str = "Alice", lang: str = "en", username: str | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"id": uid, "is_bot": False, "first_name": name, "language_code": lang}
    if username:
        out["username"] = username
    return out
