"""The bot's saved conversations: plain JSON files, written atomically, that survive damage.

Two files in the data folder, each loaded on its own:

- `users.json`: per user, the /lang choice and the drafts being put together (per chat), as
  plain values (`Draft.to_dict`), so moving or renaming a class loses nothing;
- `conversations.json`: where each member's conversation stands (a small state number).

Every write goes through a temporary file, fsync and rename (`bot.atomic.write_atomic`): a full
disk or a crash mid-write leaves the previous file whole. A file that cannot be read at start
(truncated, garbage, wrong shape) is moved aside as `<name>.<time>.damaged`, logged, and that
file alone starts empty: the bot always starts.

A `conversations.pickle` left by versions that used PTB's PicklePersistence is read once, when
no JSON file exists yet, and renamed `conversations.pickle.migrated`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import time
from pathlib import Path
from typing import Any, ClassVar

from telegram.ext import BasePersistence, PersistenceInput

from bot.atomic import remove_leftovers, write_atomic
from bot.services import Draft

log = logging.getLogger(__name__)

USERS_FILE = "users.json"
CONVERSATIONS_FILE = "conversations.json"
LEGACY_PICKLE = "conversations.pickle"
FORMAT = 1

UserData = dict[str, Any]
# As PTB keys conversations: (chat id, user id) here (per_chat and per_user).
ConversationKey = tuple[int | str, ...]
ConversationDict = dict[ConversationKey, object]


def user_to_json(data: UserData) -> dict[str, Any]:
    """One user's data as JSON values: drafts as dicts keyed by the chat id's text."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "drafts" and isinstance(value, dict):
            out["drafts"] = {
                str(chat): draft.to_dict() for chat, draft in value.items() if draft is not None
            }
        elif isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        else:
            log.warning("user data %r is not plain data; it is not saved", key)
    return out


def user_from_json(data: Any) -> UserData:
    """The inverse of `user_to_json`. A draft that does not load is dropped (and logged); a
    user entry that is not an object raises ValueError."""
    if not isinstance(data, dict):
        raise ValueError("a user's data is an object")
    out: UserData = {k: v for k, v in data.items() if k != "drafts"}
    drafts: dict[int, Draft] = {}
    for chat, raw in (data.get("drafts") or {}).items():
        try:
            drafts[int(chat)] = Draft.from_dict(raw)
        except (TypeError, ValueError, AttributeError) as exc:
            log.warning("a saved draft in chat %s cannot be read (%s); it is dropped", chat, exc)
    if drafts:
        out["drafts"] = drafts
    return out


class JsonPersistence(BasePersistence[UserData, dict[Any, Any], dict[Any, Any]]):
    """PTB persistence for user data and conversations in two JSON files in `folder`."""

    def __init__(self, folder: str | Path, update_interval: float = 5.0) -> None:
        super().__init__(
            store_data=PersistenceInput(
                bot_data=False, chat_data=False, user_data=True, callback_data=False
            ),
            update_interval=update_interval,
        )
        self.folder = Path(folder)
        self.users_path = self.folder / USERS_FILE
        self.conversations_path = self.folder / CONVERSATIONS_FILE
        self._users: dict[int, dict[str, Any]] | None = None  # JSON-able, as saved
        self._conversations: dict[str, dict[ConversationKey, object]] | None = None
        self._dirty: set[Path] = set()
        self._save_scheduled = False

    # -- loading ---------------------------------------------------------------------------

    def _load(self) -> None:
        if self._users is not None and self._conversations is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in (self.users_path, self.conversations_path):
            remove_leftovers(path)
        legacy = self.folder / LEGACY_PICKLE
        fresh = not self.users_path.exists() and not self.conversations_path.exists()
        if fresh and legacy.is_file():
            self._migrate(legacy)
            return
        self._users = self._read(self.users_path, self._parse_users) or {}
        self._conversations = self._read(self.conversations_path, self._parse_conversations) or {}

    def _read(self, path: Path, parse: Any) -> Any:
        """`parse` of the JSON in `path`; None when there is none, or when it is damaged (then
        moved aside and logged)."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("cannot read %s (%s); starting without it", path, exc)
            return None
        try:
            doc = json.loads(raw.decode("utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"not a reelbot state file of format {FORMAT}")
            return parse(doc)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._set_aside(path, f"{type(exc).__name__}: {exc}")
            return None

    def _set_aside(self, path: Path, why: str) -> None:
        kept = path.with_name(f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.damaged")
        try:
            # A rename needs no free space, unlike a copy: it works on the full disk that
            # probably damaged the file.
            path.replace(kept)
        except OSError as exc:
            log.error("state file %s is damaged (%s) and cannot be moved aside (%s); it will "
                      "be overwritten", path, why, exc)  # fmt: skip
            return
        log.error("state file %s is damaged (%s); kept as %s, starting with it empty",
                  path, why, kept.name)  # fmt: skip

    @staticmethod
    def _parse_users(doc: dict[str, Any]) -> dict[int, dict[str, Any]]:
        users = doc["users"]
        if not isinstance(users, dict):
            raise ValueError("users is an object")
        # Loaded through user_from_json and back, so a draft that cannot load is dropped once.
        return {int(uid): user_to_json(user_from_json(data)) for uid, data in users.items()}

    @staticmethod
    def _parse_conversations(doc: dict[str, Any]) -> dict[str, dict[ConversationKey, object]]:
        out: dict[str, dict[ConversationKey, object]] = {}
        for name, rows in doc["conversations"].items():
            states: dict[ConversationKey, object] = {}
            for row in rows:
                *key, state = row
                if not all(isinstance(k, int | str) for k in key):
                    raise ValueError("a conversation key is ids")
                states[tuple(key)] = state
            out[str(name)] = states
        return out

    def _migrate(self, legacy: Path) -> None:
        """Read the PicklePersistence file of older versions once, into the JSON files."""
        self._users, self._conversations = {}, {}
        try:
            with legacy.open("rb") as f:
                data = _LegacyUnpickler(f).load()
            for uid, user in (data.get("user_data") or {}).items():
                drafts = {c: d for c, d in (user.get("drafts") or {}).items() if d is not None}
                self._users[int(uid)] = user_to_json({**user, "drafts": drafts})
            for name, states in (data.get("conversations") or {}).items():
                self._conversations[str(name)] = {tuple(k): v for k, v in states.items()}
        except Exception as exc:  # unpickling raises many kinds; none may stop the bot
            self._users, self._conversations = {}, {}
            self._set_aside(legacy, f"{type(exc).__name__}: {exc}")
            return
        self._dirty |= {self.users_path, self.conversations_path}
        if self._save():
            legacy.replace(legacy.with_name(legacy.name + ".migrated"))
            log.info("moved %d user(s) from %s to JSON", len(self._users), legacy.name)

    # -- saving ----------------------------------------------------------------------------

    def _mark(self, path: Path) -> None:
        """Note a change; one save runs after the current batch of updates (Application calls
        update_* for every changed user, then nothing tells the persistence the batch ended)."""
        self._dirty.add(path)
        if not self._save_scheduled:
            self._save_scheduled = True
            asyncio.get_running_loop().call_soon(self._save)

    def _save(self) -> bool:
        """Write every changed file; a failure is logged and the file stays due for the next
        save, its old content untouched. True when everything was written."""
        self._save_scheduled = False
        ok = True
        for path in sorted(self._dirty):
            try:
                write_atomic(path, self._dump(path))
            except OSError as exc:
                ok = False
                log.error("saving %s failed (%s); its last saved content is kept", path, exc)
            else:
                self._dirty.discard(path)
        return ok

    def _dump(self, path: Path) -> str:
        doc: dict[str, Any] = {"format": FORMAT}
        if path == self.users_path:
            doc["users"] = {str(uid): data for uid, data in (self._users or {}).items()}
        else:
            doc["conversations"] = {
                name: [[*key, state] for key, state in states.items()]
                for name, states in (self._conversations or {}).items()
            }
        return json.dumps(doc, ensure_ascii=False, indent=1)

    # -- BasePersistence -------------------------------------------------------------------

    async def get_user_data(self) -> dict[int, UserData]:
        self._load()
        return {uid: user_from_json(data) for uid, data in (self._users or {}).items()}

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def get_callback_data(self) -> None:
        return None

    async def get_conversations(self, name: str) -> ConversationDict:
        self._load()
        return dict((self._conversations or {}).get(name, {}))

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        self._load()
        assert self._conversations is not None
        states = self._conversations.setdefault(name, {})
        if new_state is None:
            if states.pop(key, None) is None:
                return
        elif states.get(key) == new_state:
            return
        else:
            states[key] = new_state
        self._mark(self.conversations_path)

    async def update_user_data(self, user_id: int, data: UserData) -> None:
        self._load()
        assert self._users is not None
        plain = user_to_json(data)
        if self._users.get(user_id) == plain:
            return
        self._users[user_id] = plain
        self._mark(self.users_path)

    async def drop_user_data(self, user_id: int) -> None:
        self._load()
        assert self._users is not None
        if self._users.pop(user_id, None) is not None:
            self._mark(self.users_path)

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        """Chat data is not kept."""

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        """Bot data is not kept (it holds the live services)."""

    async def update_callback_data(self, data: Any) -> None:
        """Callback data is not kept (buttons carry their own data: bot.callbacks)."""

    async def drop_chat_data(self, chat_id: int) -> None:
        """Chat data is not kept."""

    async def refresh_user_data(self, user_id: int, user_data: UserData) -> None:
        """The in-memory data is the newest: nothing to refresh."""

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        """Chat data is not kept."""

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        """Bot data is not kept."""

    async def flush(self) -> None:
        """At shutdown: write what is still unsaved (a failure is logged, never raised)."""
        if self._dirty:
            self._save()


class _LegacyUnpickler(pickle.Unpickler):
    """Unpickles only what PicklePersistence of older versions stored: plain containers and
    the bot's Draft and Clip. Anything else is refused, so the old file cannot run code."""

    _ALLOWED: ClassVar[frozenset[tuple[str, str]]] = frozenset(
        {
            ("bot.services", "Draft"),
            ("bot.services", "Clip"),
            ("copyreg", "_reconstructor"),
            ("builtins", "object"),
            ("builtins", "set"),
            ("builtins", "frozenset"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in saved state")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        # PicklePersistence stands a marker in for Bot objects; the bot never stored one.
        return None
