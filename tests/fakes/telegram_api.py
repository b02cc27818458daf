"""A fake Telegram Bot API on loopback, for python-telegram-bot's real `Bot` to talk to.

It serves `/bot<token>/<method>` and the file downloads under `/file/bot<token>/`, takes the
forms PTB posts (url-encoded, or multipart for a document), answers in the Bot API's own shape
(`{"ok": true, "result": …}` with Message objects as Telegram returns them, errors with
`error_code`, `description` and `parameters.retry_after`) and records every call. It holds the
bot to Telegram's rules where a bug could hide: the token in the path, text ≤ 4,096 characters
and not empty, HTML markup that parses, callback data of 1–64 bytes, URL buttons with a real
http(s) URL (no loopback host, as Telegram), a callback query answered once, a message deleted
only if it exists, getUpdates refused while a webhook is set, webhooks only to https.

The test plays the customers: `message`, `callback`, `document` and `membership` build
updates (and remember the customer's messages, so they can be deleted), `queue` feeds the
long poll, `fail` and `block` inject the platform's faults (429 with `retry_after`, 403 "bot
was blocked by the user", 5xx).

It also plays a support group: `forum` makes a forum supergroup, whose topics the bot makes,
renames, closes, reopens and deletes as the Bot API does (createForumTopic answers a ForumTopic
whose `message_thread_id` is the id of the topic's service message; a name of 1–128
characters; only in a forum). sendMessage with a `message_thread_id` of a deleted or unknown
topic answers 400 "Bad Request: message thread not found", of a closed one 400 "Bad Request:
TOPIC_CLOSED";
closing a closed topic or reopening an open one is "TOPIC_NOT_MODIFIED", a deleted one
"TOPIC_ID_INVALID". The test plays the group's members: `topic_message` builds a member's
update in a topic, `close_topic` and `delete_topic` are an admin's doing.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.test_utils import TestServer

TOKEN = "7000000001:AAFakeTokenForTheCertDeskTestSuite_x9"
BOT_ID = 7000000001
BOT_USERNAME = "CertDeskTestBot"
MAX_TEXT = 4096
MAX_CAPTION = 1024
HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
CHAT_ACTIONS = {"typing", "upload_document", "upload_photo", "record_voice", "choose_sticker"}
STRING_FIELDS = {
    "text",
    "caption",
    "callback_query_id",
    "url",
    "secret_token",
    "parse_mode",
    "action",
    "file_id",
    "language_code",
    "name",
}
"""Form fields PTB sends as they are; every other field is JSON (numbers, objects, booleans)."""


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    status: int = 200

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None


@dataclass
class Fault:
    method: str
    status: int
    description: str
    retry_after: int | None = None
    chat_id: int | None = None
    count: int = 1


@dataclass
class Sent:
    """A message the bot sent, as the customer sees it."""

    chat_id: int
    message_id: int
    text: str
    """The text as shown: markup removed, entities unescaped (a document's caption)."""
    raw: dict[str, Any]
    document: tuple[str, bytes] | None = None

    @property
    def buttons(self) -> list[dict[str, Any]]:
        markup = self.raw.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]

    @property
    def urls(self) -> list[str]:
        return [b["url"] for b in self.buttons if "url" in b]

    @property
    def thread(self) -> int | None:
        """The forum topic it was posted in (`message_thread_id`), if any."""
        value = self.raw.get("message_thread_id")
        return int(value) if value is not None else None


@dataclass
class Topic:
    """A forum topic as the group's members see it."""

    thread: int
    name: str
    closed: bool = False
    deleted: bool = False


class ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


class FakeTelegramApi:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.deleted: list[tuple[int, int]] = []
        self.faults: list[Fault] = []
        self.blocked: set[int] = set()
        self.reject_loopback_urls = True
        self.webhook: dict[str, Any] | None = None
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._messages: dict[int, dict[int, dict[str, Any]]] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self.topics: dict[int, dict[int, Topic]] = {}
        """Per forum: its topics by `message_thread_id` (deleted ones kept, marked)."""
        self._files: dict[str, tuple[str, bytes, str]] = {}
        self._callbacks: dict[str, bool] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_arrived = asyncio.Event()
        self._message_ids = itertools.count(1000)
        self._update_ids = itertools.count(500_000)
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self.server: TestServer | None = None

    # -- the server ---------------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.add_routes(
            [
                web.route("*", "/bot{token}/{method}", self._method),
                web.get("/file/bot{token}/{path:.+}", self._download),
            ]
        )
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server(access_log=None)  # its URLs hold the token
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    # -- the customers' side ------------------------------------------------------------------

    def chat(self, chat_id: int, kind: str = "private") -> dict[str, Any]:
        if chat_id not in self._chats:
            chat: dict[str, Any] = {"id": chat_id, "type": kind}
            if kind == "private":
                chat.update(first_name="三", last_name="王", username=f"user{abs(chat_id)}")
            else:
                chat["title"] = f"Group {abs(chat_id)}"
            self._chats[chat_id] = chat
        return self._chats[chat_id]

    def forum(self, chat_id: int, title: str = "CertDesk support") -> dict[str, Any]:
        """A forum supergroup (the support group) the bot is an admin of."""
        chat = {"id": chat_id, "type": "supergroup", "title": title, "is_forum": True}
        self._chats[chat_id] = chat
        self.topics.setdefault(chat_id, {})
        return chat

    def topic_message(
        self,
        chat_id: int,
        thread: int,
        text: str | None,
        *,
        user_id: int,
        username: str | None = None,
        update_id: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """An update with a member's message in a forum topic."""
        update = self.message(
            chat_id,
            text,
            kind="supergroup",
            user_id=user_id,
            update_id=update_id,
            message_thread_id=thread,
            is_topic_message=True,
            **extra,
        )
        if username:
            update["message"]["from"]["username"] = username
        return update

    def close_topic(self, chat_id: int, thread: int) -> None:
        """An admin closes the topic (its messages stay)."""
        self.topics[chat_id][thread].closed = True

    def delete_topic(self, chat_id: int, thread: int) -> None:
        """An admin deletes the topic and every message in it."""
        self._delete_topic(chat_id, thread)

    def in_topic(self, chat_id: int, thread: int) -> list[str]:
        """The texts the bot posted in a topic that still exist, in order."""
        kept = self._messages.get(chat_id, {})
        return [s.text for s in self.to(chat_id) if s.thread == thread and s.message_id in kept]

    def user(self, user_id: int, language: str | None = "zh-hant") -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "三"}
        if language:
            user["language_code"] = language
        return user

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        kind: str = "private",
        user_id: int | None = None,
        language: str | None = "zh-hant",
        update_id: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """An update with a message the customer sent (remembered, so it can be deleted)."""
        message_id = next(self._message_ids)
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self.chat(chat_id, kind),
            "from": self.user(user_id or abs(chat_id), language),
            **extra,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                length = len(text.split()[0])
                message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        self._messages.setdefault(chat_id, {})[message_id] = message
        return {"update_id": update_id or self.next_update_id(), "message": message}

    def document(
        self, chat_id: int, content: bytes, file_name: str, *, file_size: int | None = None
    ) -> dict[str, Any]:
        """An update with a file the customer sent (stored, for getFile and the download)."""
        number = next(self._ids)
        file_id = f"BQACAgUAAxkBAAI{number:06d}"
        suffix = file_name.rpartition(".")[2] if "." in file_name else "bin"
        self._files[file_id] = (file_name, content, f"documents/file_{number}.{suffix}")
        document = {
            "file_id": file_id,
            "file_unique_id": f"AgAD{number:06d}",
            "file_name": file_name,
            "mime_type": "application/octet-stream",
            "file_size": len(content) if file_size is None else file_size,
        }
        return self.message(chat_id, document=document)

    def callback(
        self, chat_id: int, data: str, *, message: Sent | None = None, language: str = "zh-hant"
    ) -> dict[str, Any]:
        """An update with a tap on an inline button of one of the bot's messages."""
        source = message or self.last_to(chat_id)
        assert source is not None, "no message to tap on"
        query_id = str(4_000_000_000 + next(self._ids))
        self._callbacks[query_id] = False
        query = {
            "id": query_id,
            "from": self.user(abs(chat_id), language),
            "chat_instance": str(abs(chat_id) * 7),
            "message": self._messages[chat_id][source.message_id],
            "data": data,
        }
        return {"update_id": self.next_update_id(), "callback_query": query}

    def membership(self, chat_id: int, status: str, old: str = "member") -> dict[str, Any]:
        """my_chat_member: the customer blocked (`kicked`) or unblocked (`member`) the bot."""
        bot = {"id": BOT_ID, "is_bot": True, "first_name": "CertDesk", "username": BOT_USERNAME}
        change = {
            "chat": self.chat(chat_id),
            "from": self.user(abs(chat_id)),
            "date": int(time.time()),
            "old_chat_member": {"status": old, "user": bot},
            "new_chat_member": {"status": status, "user": bot, "until_date": 0}
            if status == "kicked"
            else {"status": status, "user": bot},
        }
        return {"update_id": self.next_update_id(), "my_chat_member": change}

    def queue(self, update: dict[str, Any]) -> None:
        """Deliver an update through getUpdates (long polling)."""
        self._updates.append(update)
        self._update_arrived.set()

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        *,
        retry_after: int | None = None,
        chat_id: int | None = None,
        count: int = 1,
    ) -> None:
        self.faults.append(Fault(method, status, description, retry_after, chat_id, count))

    def block(self, chat_id: int) -> None:
        """The customer blocks the bot: every send to the chat is refused with 403."""
        self.blocked.add(chat_id)

    # -- what the bot did ---------------------------------------------------------------------

    def to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def texts_to(self, chat_id: int) -> list[str]:
        return [s.text for s in self.to(chat_id)]

    def last_to(self, chat_id: int) -> Sent | None:
        sent = self.to(chat_id)
        return sent[-1] if sent else None

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0) -> None:
        async def waiting() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(waiting(), timeout)

    # -- the Bot API --------------------------------------------------------------------------

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, files = await _read_params(request)
        call = Call(method, params, files)
        self.calls.append(call)
        self._changed.set()
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            fault = self._fault(method, call.chat_id)
            if fault is not None:
                call.status = fault.status
                return _error(fault.status, fault.description, fault.retry_after)
            if call.chat_id is not None and call.chat_id in self.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            handler = getattr(self, f"_api_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(call)
        except ApiError as error:
            call.status = error.status
            return _error(error.status, error.description)
        finally:
            self._changed.set()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        for _, content, file_path in self._files.values():
            if file_path == path:
                return web.Response(body=content, content_type="application/octet-stream")
        return _error(404, "Not Found")

    def _fault(self, method: str, chat_id: int | None) -> Fault | None:
        for fault in self.faults:
            if fault.count > 0 and fault.method == method:
                if fault.chat_id is not None and fault.chat_id != chat_id:
                    continue
                fault.count -= 1
                return fault
        return None

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "CertDesk",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _known_chat(self, call: Call) -> int:
        chat_id = call.chat_id
        if chat_id is None or chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _new_message(self, chat_id: int, **content: Any) -> dict[str, Any]:
        message_id = next(self._message_ids)
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chats[chat_id],
            "from": self._bot_user(),
            **{k: v for k, v in content.items() if v is not None},
        }
        self._messages.setdefault(chat_id, {})[message_id] = message
        return message

    async def _api_getMe(self, call: Call) -> Any:
        return self._bot_user()

    async def _api_setWebhook(self, call: Call) -> Any:
        url = str(call.params.get("url", ""))
        if url and not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        self.webhook = dict(call.params) if url else None
        return True

    async def _api_deleteWebhook(self, call: Call) -> Any:
        self.webhook = None
        return True

    async def _api_getWebhookInfo(self, call: Call) -> Any:
        return {"url": (self.webhook or {}).get("url", ""), "pending_update_count": 0}

    async def _api_setMyCommands(self, call: Call) -> Any:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or not 1 <= len(commands) <= 100:
            raise ApiError(400, "Bad Request: commands must be a non-empty list")
        for command in commands:
            name, description = command.get("command", ""), command.get("description", "")
            if not (1 <= len(name) <= 32 and name.isascii() and name == name.lower()):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        scope = (call.params.get("scope") or {"type": "default"}).get("type", "default")
        self.commands[(scope, str(call.params.get("language_code") or ""))] = commands
        return True

    async def _api_getUpdates(self, call: Call) -> Any:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(call.params.get("offset") or 0)
        limit = int(call.params.get("limit") or 100)
        timeout = float(call.params.get("timeout") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._updates:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return []
            self._update_arrived.clear()
            try:
                await asyncio.wait_for(self._update_arrived.wait(), remaining)
            except TimeoutError:
                return []
        return self._updates[:limit]

    async def _api_sendMessage(self, call: Call) -> Any:
        chat_id = self._known_chat(call)
        thread = self._thread(chat_id, call.params.get("message_thread_id"))
        raw = str(call.params.get("text", ""))
        shown = _shown_text(raw, call.params.get("parse_mode"))
        if not shown.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if _utf16(shown) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        markup = self._check_markup(call.params.get("reply_markup"))
        message = self._new_message(
            chat_id,
            text=shown,
            reply_markup=markup,
            message_thread_id=thread,
            is_topic_message=True if thread is not None else None,
        )
        self.sent.append(Sent(chat_id, message["message_id"], shown, call.params))
        return message

    def _thread(self, chat_id: int, value: Any) -> int | None:
        """The topic a message goes to; a deleted or closed one is refused as Telegram does."""
        if value is None or not self._chats[chat_id].get("is_forum"):
            return None
        topic = self.topics[chat_id].get(int(value))
        if topic is None or topic.deleted:
            raise ApiError(400, "Bad Request: message thread not found")
        if topic.closed:
            raise ApiError(400, "Bad Request: TOPIC_CLOSED")
        return topic.thread

    def _topic(self, call: Call) -> tuple[int, Topic]:
        chat_id = self._known_chat(call)
        if not self._chats[chat_id].get("is_forum"):
            raise ApiError(400, "Bad Request: the chat is not a forum")
        topic = self.topics[chat_id].get(int(call.params.get("message_thread_id") or 0))
        if topic is None or topic.deleted:
            raise ApiError(400, "Bad Request: TOPIC_ID_INVALID")
        return chat_id, topic

    async def _api_createForumTopic(self, call: Call) -> Any:
        chat_id = self._known_chat(call)
        if not self._chats[chat_id].get("is_forum"):
            raise ApiError(400, "Bad Request: the chat is not a forum")
        name = str(call.params.get("name", ""))
        if not 1 <= len(name) <= 128:
            raise ApiError(400, "Bad Request: TOPIC_NAME_INVALID")
        # The topic's id is the id of the service message that opens it.
        service = self._new_message(
            chat_id, forum_topic_created={"name": name, "icon_color": 0x6FB9F0}
        )
        thread = service["message_id"]
        service.update(message_thread_id=thread, is_topic_message=True)
        self.topics[chat_id][thread] = Topic(thread, name)
        return {"message_thread_id": thread, "name": name, "icon_color": 0x6FB9F0}

    async def _api_closeForumTopic(self, call: Call) -> Any:
        _, topic = self._topic(call)
        if topic.closed:
            raise ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
        topic.closed = True
        return True

    async def _api_reopenForumTopic(self, call: Call) -> Any:
        _, topic = self._topic(call)
        if not topic.closed:
            raise ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
        topic.closed = False
        return True

    async def _api_editForumTopic(self, call: Call) -> Any:
        _, topic = self._topic(call)
        name = call.params.get("name")
        if name is not None:
            if not 1 <= len(str(name)) <= 128:
                raise ApiError(400, "Bad Request: TOPIC_NAME_INVALID")
            if str(name) == topic.name:
                raise ApiError(400, "Bad Request: TOPIC_NOT_MODIFIED")
            topic.name = str(name)
        return True

    async def _api_deleteForumTopic(self, call: Call) -> Any:
        chat_id, topic = self._topic(call)
        self._delete_topic(chat_id, topic.thread)
        return True

    def _delete_topic(self, chat_id: int, thread: int) -> None:
        self.topics[chat_id][thread].deleted = True
        messages = self._messages.get(chat_id, {})
        for message_id in [m for m, v in messages.items() if v.get("message_thread_id") == thread]:
            del messages[message_id]

    async def _api_sendDocument(self, call: Call) -> Any:
        chat_id = self._known_chat(call)
        if "document" not in call.files:
            raise ApiError(400, "Bad Request: there is no document in the request")
        name, content = call.files["document"]
        caption = _shown_text(str(call.params.get("caption", "")), call.params.get("parse_mode"))
        if _utf16(caption) > MAX_CAPTION:
            raise ApiError(400, "Bad Request: message caption is too long")
        markup = self._check_markup(call.params.get("reply_markup"))
        number = next(self._ids)
        document = {
            "file_id": f"BQACAgUAAxkDAAI{number:06d}",
            "file_unique_id": f"AgADbot{number:06d}",
            "file_name": name,
            "mime_type": "application/x-pkcs12",
            "file_size": len(content),
        }
        message = self._new_message(
            chat_id,
            document=document,
            caption=caption or None,
            reply_markup=markup,
            has_protected_content=True if call.params.get("protect_content") else None,
        )
        self.sent.append(
            Sent(chat_id, message["message_id"], caption, call.params, (name, content))
        )
        return message

    async def _api_answerCallbackQuery(self, call: Call) -> Any:
        query_id = str(call.params.get("callback_query_id", ""))
        if query_id not in self._callbacks:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired")
        if self._callbacks[query_id]:
            raise ApiError(400, "Bad Request: query is already answered")
        self._callbacks[query_id] = True
        return True

    async def _api_deleteMessage(self, call: Call) -> Any:
        chat_id = self._known_chat(call)
        message_id = int(call.params.get("message_id", 0))
        if message_id not in self._messages.get(chat_id, {}):
            raise ApiError(400, "Bad Request: message to delete not found")
        del self._messages[chat_id][message_id]
        self.deleted.append((chat_id, message_id))
        return True

    async def _api_sendChatAction(self, call: Call) -> Any:
        self._known_chat(call)
        if call.params.get("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _api_getFile(self, call: Call) -> Any:
        file_id = str(call.params.get("file_id", ""))
        if file_id not in self._files:
            raise ApiError(400, "Bad Request: invalid file_id")
        _, content, path = self._files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id[-6:]}",
            "file_size": len(content),
            "file_path": path,
        }

    def _check_markup(self, markup: Any) -> Any:
        if markup is None:
            return None
        if not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard"), list):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup["inline_keyboard"]:
            for button in row:
                if not button.get("text"):
                    raise ApiError(
                        400, "Bad Request: text buttons are unallowed in the inline keyboard"
                    )
                if "callback_data" in button:
                    size = len(str(button["callback_data"]).encode("utf-8"))
                    if not 1 <= size <= 64:
                        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                elif "url" in button:
                    if not self._acceptable_url(str(button["url"])):
                        raise ApiError(
                            400,
                            f"Bad Request: inline keyboard button URL '{button['url']}' is invalid",
                        )
                else:
                    raise ApiError(400, "Bad Request: inline keyboard button has no action")
        return markup

    def _acceptable_url(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "tg") or not parts.hostname:
            return False
        if not self.reject_loopback_urls:
            return True
        host = parts.hostname
        if host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(host).is_loopback
        except ValueError:
            return True


class _Markup(HTMLParser):
    """Telegram's HTML parse mode: the tags it knows, properly nested; the text as shown."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.text: list[str] = []
        self.problem: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in HTML_TAGS:
            self.problem = self.problem or f'unsupported start tag "{tag}"'
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problem = self.problem or f'unexpected end tag "{tag}"'
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _shown_text(raw: str, parse_mode: Any) -> str:
    if parse_mode != "HTML":
        return raw
    parser = _Markup()
    parser.feed(raw)
    parser.close()
    if parser.problem is None and parser.open:
        parser.problem = f'can\'t find end tag corresponding to start tag "{parser.open[-1]}"'
    if parser.problem is not None:
        raise ApiError(400, f"Bad Request: can't parse entities: {parser.problem}")
    return html.unescape("".join(parser.text))


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def _read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    params: dict[str, Any] = {}
    files: dict[str, tuple[str, bytes]] = {}
    if request.method == "GET":
        form: Any = request.query
    elif request.content_type == "application/json":
        body = await request.json()
        return (body if isinstance(body, dict) else {}), files
    else:
        form = await request.post()
    for name, value in form.items():
        if isinstance(value, web.FileField):
            files[name] = (value.filename, value.file.read())
        elif name in STRING_FIELDS:
            params[name] = str(value)
        else:
            try:
                params[name] = json.loads(value)
            except ValueError:
                params[name] = value
    return params, files


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)
