"""The Bot API side of the fake Telegram server: HTTP routes, the methods the bot calls, files,
and the long-poll update queue. `tests.fake_telegram.FakeTelegram` adds the users' side."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token-never-real"
BOT = {
    "id": 123456,
    "is_bot": True,
    "first_name": "Reelbot",
    "username": "reelbot_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,  # privacy mode on
    "supports_inline_queries": False,
}


@dataclass
class Call:
    """One Bot API request the bot made."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float = field(default_factory=time.monotonic)
    result: Any = None

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    def upload(self, name: str) -> bytes | None:
        """The bytes uploaded for parameter `name` (a part of its own or an attach:// one)."""
        if name in self.files:
            return self.files[name]
        ref = self.params.get(name)
        if isinstance(ref, str) and ref.startswith("attach://"):
            return self.files.get(ref[len("attach://") :])
        return None

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")


def _decode(value: str) -> Any:
    if value[:1] in "{[" or value in ("true", "false", "null"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class BotAPIServer:
    """The server and its recorded calls."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}
        self.file_sizes: dict[str, int] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.chats: dict[int, dict[str, Any]] = {}
        self.failures: dict[str, list[tuple[int, str, int | None]]] = {}
        self.slow: dict[str, float] = {}  # method -> seconds its answer takes (a call in flight)
        # getChatMember answers: (chat, user) -> ChatMember object; missing = "left".
        self.members: dict[tuple[int, int], dict[str, Any]] = {}
        self.linked_chats: dict[int, int] = {}  # channel -> its discussion group
        self.usernames: dict[str, int] = {}  # "@name" -> chat id
        self._ids = itertools.count(1)
        self._msg_ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    # -- server ------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=200 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        # Pending long polls answer at once instead of holding the shutdown for their timeout.
        self._closing = True
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def fail(
        self,
        method: str,
        code: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with an error."""
        self.failures.setdefault(method, []).extend([(code, description, retry_after)] * times)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != TOKEN:
            return web.Response(status=401)
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params = await request.json()
        else:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                else:
                    params[key] = _decode(str(value))
        call = Call(method, params, files)
        if method in self.slow:
            await asyncio.sleep(self.slow[method])
        pending = self.failures.get(method)
        if pending:
            code, description, retry_after = pending.pop(0)
            async with self._changed:
                self.calls.append(call)
                self._changed.notify_all()
            body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
            if retry_after is not None:
                body["parameters"] = {"retry_after": retry_after}
            return web.json_response(body, status=code)
        handler: Callable[..., Any] | None = getattr(self, "_m_" + method, None)
        if handler is None:
            result: Any = True
            if method not in (
                "deleteWebhook",
                "setWebhook",
                "setMyCommands",
                "close",
                "logOut",
                "sendChatAction",
                "answerCallbackQuery",
            ):
                return web.json_response(
                    {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
                )
        else:
            try:
                result = (
                    await handler(params, files)
                    if method == "getUpdates"
                    else handler(params, files)
                )
            except BadRequest as exc:
                async with self._changed:
                    self.calls.append(call)
                    self._changed.notify_all()
                return web.json_response(
                    {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"},
                    status=400,
                )
        call.result = result
        if method != "getUpdates":
            async with self._changed:
                self.calls.append(call)
                self._changed.notify_all()
        return web.json_response({"ok": True, "result": result})

    # -- Bot API methods ---------------------------------------------------------------------

    def _m_getMe(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        return BOT

    async def _m_getUpdates(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        offset = int(p.get("offset") or 0)
        timeout = float(p.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
                if self.updates or self._closing or time.monotonic() >= deadline:
                    return list(self.updates[:100])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), deadline - time.monotonic())

    def _message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        markup = content.get("reply_markup")
        if not (isinstance(markup, dict) and "inline_keyboard" in markup):
            content.pop("reply_markup", None)  # only inline keyboards show up in a Message
        msg = {
            "message_id": next(self._msg_ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": BOT,
            **{k: v for k, v in content.items() if v is not None},
        }
        self.messages[(chat_id, msg["message_id"])] = msg
        return msg

    def _m_sendMessage(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        if not str(p.get("text", "")).strip():
            raise BadRequest("message text is empty")
        if len(str(p["text"]).encode("utf-16-le")) // 2 > 4096:
            raise BadRequest("message is too long")
        return self._message(
            int(p["chat_id"]), text=str(p["text"]), reply_markup=p.get("reply_markup")
        )

    def _m_editMessageText(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        key = (int(p["chat_id"]), int(p["message_id"]))
        msg = self.messages.get(key)
        if msg is None:
            raise BadRequest("message to edit not found")
        markup = p.get("reply_markup")
        if msg.get("text") == str(p["text"]) and msg.get("reply_markup") == markup:
            raise BadRequest(
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        msg["text"] = str(p["text"])
        msg["reply_markup"] = markup
        if markup is None:
            msg.pop("reply_markup")
        return msg

    def _m_editMessageReplyMarkup(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        msg = self.messages.get((int(p["chat_id"]), int(p["message_id"])))
        if msg is None:
            raise BadRequest("message to edit not found")
        if (p.get("reply_markup") or None) == msg.get("reply_markup"):
            raise BadRequest(  # as Telegram answers an edit that changes nothing
                "message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"
            )
        if p.get("reply_markup"):
            msg["reply_markup"] = p["reply_markup"]
        else:
            msg.pop("reply_markup", None)
        return msg

    def _upload(self, value: Any, files: dict[str, bytes]) -> bytes:
        if isinstance(value, str) and value.startswith("attach://"):
            return files[value[len("attach://") :]]
        raise BadRequest(f"expected an uploaded file, got {value!r}")

    def _caption(self, p: dict[str, Any]) -> str | None:
        caption = p.get("caption")
        if caption is not None and len(str(caption).encode("utf-16-le")) // 2 > 1024:
            raise BadRequest("message caption is too long")
        return None if caption is None else str(caption)

    def _m_sendPhoto(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        data = f.get("photo") or self._upload(p.get("photo"), f)
        photo = self.store_file(data)
        return self._message(
            int(p["chat_id"]),
            photo=[{**photo, "width": 320, "height": 320}],
            caption=self._caption(p),
        )

    def _m_sendMediaGroup(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        media = p["media"]
        if not 2 <= len(media) <= 10:
            raise BadRequest("wrong number of media in the album")
        out = []
        for item in media:
            photo = self.store_file(self._upload(item["media"], f))
            self._caption(item)
            out.append(
                self._message(
                    int(p["chat_id"]),
                    caption=item.get("caption"),
                    photo=[{**photo, "width": 320, "height": 320}],
                )
            )
        return out

    def _m_sendVideo(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        ref = p.get("video")
        if isinstance(ref, str) and not ref.startswith("attach://") and "video" not in f:
            # A file_id: Telegram sends the file it has, nothing is uploaded.
            if ref not in self.files:
                raise BadRequest("wrong file identifier/HTTP URL specified")
            data = self.files[ref]
            if self.chats.get(int(p["chat_id"]), {}).get("type") == "channel":
                me = self.members.get((int(p["chat_id"]), BOT["id"]), {})
                if not me.get("can_post_messages"):
                    raise BadRequest("need administrator rights in the channel chat")
            for name in ("cover", "thumbnail"):
                if name in p:
                    self._upload(p[name], f)
            video = {"file_id": ref, "file_unique_id": "u" + ref, "file_size": len(data),
                     "width": int(p.get("width", 0)), "height": int(p.get("height", 0)),
                     "duration": int(p.get("duration", 0)), "mime_type": "video/mp4"}  # fmt: skip
            msg = self._message(int(p["chat_id"]), video=video, caption=self._caption(p))
            if msg["chat"]["type"] == "channel":
                msg.pop("from")  # channel posts have a sender_chat, no user
                msg["sender_chat"] = msg["chat"]
            return msg
        data = f.get("video") or self._upload(p.get("video"), f)
        if len(data) > 50 * 2**20:
            raise BadRequest("file is too big")
        for name in ("cover", "thumbnail"):
            if name in p:
                self._upload(p[name], f)
        video = self.store_file(data)
        video.update(
            width=int(p.get("width", 0)),
            height=int(p.get("height", 0)),
            duration=int(p.get("duration", 0)),
            mime_type="video/mp4",
        )
        return self._message(int(p["chat_id"]), video=video, caption=self._caption(p))

    def _m_getFile(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        file_id = str(p["file_id"])
        if file_id not in self.file_sizes:
            raise BadRequest("invalid file_id")
        size = self.file_sizes[file_id]
        if size > 20 * 2**20:
            raise BadRequest("file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": size,
            "file_path": f"documents/{file_id}",
        }

    def _chat_id(self, value: Any) -> int:
        if isinstance(value, str) and value.startswith("@"):
            if value not in self.usernames:
                raise BadRequest("chat not found")
            return self.usernames[value]
        return int(value)

    def _m_getChat(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        chat_id = self._chat_id(p["chat_id"])
        if chat_id not in self.chats:
            raise BadRequest("chat not found")
        full = {**self.chats[chat_id], "accent_color_id": 0, "max_reaction_count": 11}
        if chat_id in self.linked_chats:
            full["linked_chat_id"] = self.linked_chats[chat_id]
        return full

    def _m_getChatMember(self, p: dict[str, Any], f: dict[str, bytes]) -> Any:
        chat_id, user_id = self._chat_id(p["chat_id"]), int(p["user_id"])
        if chat_id not in self.chats:
            raise BadRequest("chat not found")
        found = self.members.get((chat_id, user_id))
        person = BOT if user_id == BOT["id"] else {"id": user_id, "is_bot": False,
                                                   "first_name": f"user{user_id}"}  # fmt: skip
        return found or {"status": "left", "user": person}

    def set_member(self, chat_id: int, user_id: int, status: str, **rights: bool) -> None:
        """What getChatMember answers for `user_id` in `chat_id`: creator, administrator (with
        `rights`, e.g. can_post_messages=True), member or left."""
        person = BOT if user_id == BOT["id"] else {"id": user_id, "is_bot": False,
                                                   "first_name": f"user{user_id}"}  # fmt: skip
        member: dict[str, Any] = {"status": status, "user": person}
        if status == "creator":
            member["is_anonymous"] = False
        if status == "administrator":
            member.update(
                can_be_edited=False, is_anonymous=False, can_manage_chat=True,
                can_delete_messages=True, can_manage_video_chats=False, can_restrict_members=True,
                can_promote_members=False, can_change_info=False, can_invite_users=True,
                can_post_stories=False, can_edit_stories=False, can_delete_stories=False,
            )  # fmt: skip
            member.update(rights)
        self.members[(chat_id, user_id)] = member

    def channel(
        self, chat_id: int, title: str, username: str | None = None, discussion: int | None = None
    ) -> dict[str, Any]:
        """A channel (optionally public as @username, with a discussion supergroup)."""
        chat = self.chat(chat_id, "channel", title)
        if username:
            chat["username"] = username
            self.usernames["@" + username] = chat_id
        if discussion is not None:
            self.chat(discussion, "supergroup", title + " chat")
            self.linked_chats[chat_id] = discussion
        return chat

    def chat(self, chat_id: int, kind: str | None = None, title: str = "") -> dict[str, Any]:
        """The chat object for `chat_id` (negative ids are groups unless said otherwise)."""
        if chat_id not in self.chats:
            kind = kind or ("supergroup" if chat_id < 0 else "private")
            chat: dict[str, Any] = {"id": chat_id, "type": kind}
            if kind == "private":
                chat["first_name"] = f"user{chat_id}"
            else:
                chat["title"] = title or "Test group"
            self.chats[chat_id] = chat
        return self.chats[chat_id]

    def store_file(self, data: bytes, size: int | None = None) -> dict[str, Any]:
        file_id = f"F{next(self._ids)}"
        self.files[file_id] = data
        self.file_sizes[file_id] = len(data) if size is None else size
        return {
            "file_id": file_id,
            "file_unique_id": "u" + file_id,
            "file_size": self.file_sizes[file_id],
        }

    async def push(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        async with self._changed:
            self.updates.append(update)
            self._changed.notify_all()
        return update


class BadRequest(Exception):
    """Raised by a method handler: answered as HTTP 400 with this description."""
