"""Card clicks over DingTalk's Stream mode (no public URL), answered inside the API server.

DingTalk sends a click on a card created with ``callbackType: STREAM`` down one of the app's Stream
connections as CALLBACK ``/v1.0/card/instances/callback``, and takes the card update from the ack's
``data``, ``{"response": <update>}`` ("Card callback", open.dingtalk.com/document/orgapp/
event-callback-card; "Stream 模式协议说明"). :class:`CardStreamListener` holds such a connection in a
thread of its own (the click handler blocks on the metadata DB) and answers each click with
:class:`~.card_callback.CardClickHandler`, the same handler as the HTTP callback.

Nothing DingTalk delivered is lost on a restart: a click is acked only after its answer is committed
(or refused); on shutdown the clicks being answered get ``grace`` seconds to finish, and frames read
but not answered yet are never acked, so DingTalk pushes them again, to another connection.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_dingtalk.events.card_callback import CardClickHandler, failed_reply

if TYPE_CHECKING:
    from airflow_provider_dingtalk.hooks.base import AppConfig
    from airflow_provider_dingtalk.stream.client import StreamMessage

__all__ = ["CARD_CALLBACK_TOPIC", "CardStreamListener"]

log = logging.getLogger(__name__)

CARD_CALLBACK_TOPIC = "/v1.0/card/instances/callback"


class CardStreamListener:
    """One Stream connection for card clicks, in a daemon thread: :meth:`start`, :meth:`stop`.

    :param app: the app to connect as, read when (re)connecting; ``None`` when this API server should
        not listen (nobody may answer from DingTalk), asked again after ``recheck`` seconds.
    :param handler: the click handler.
    :param recheck: seconds between looks at ``app`` while it is ``None`` or refused by DingTalk.
    :param grace: on :meth:`stop`, seconds for the clicks being answered to finish and be acked.
    :param client_options: passed to :class:`~..stream.client.DingTalkStreamClient` (keepalive, backoff).
    """

    def __init__(
        self,
        *,
        app: Callable[[], AppConfig | None],
        handler: CardClickHandler,
        recheck: float = 60.0,
        grace: float = 5.0,
        **client_options: Any,
    ) -> None:
        self.app, self.handler, self.recheck, self.grace = app, handler, recheck, grace
        self.client_options = client_options
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._answering: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="dingtalk-card-stream", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking clicks, let those being answered finish (``grace``), close the connection."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None or loop is None or stopping is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        thread.join(self.grace + 5 if timeout is None else timeout)
        self._thread = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        listening = asyncio.create_task(self._listen())
        await self._stopping.wait()
        if self._answering:  # each is acked when done, on the socket still open
            await asyncio.wait(self._answering, timeout=self.grace)
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)

    async def _listen(self) -> None:
        from airflow_provider_dingtalk.exceptions import DingTalkAPIError
        from airflow_provider_dingtalk.stream.client import DingTalkStreamClient

        while True:
            try:
                app = await asyncio.to_thread(self.app)
            except Exception as exc:  # a connection that is wrong now may be fixed later
                log.error("DingTalk card clicks over Stream: %s", exc)
                app = None
            if app is None:
                await asyncio.sleep(self.recheck)
                continue
            client = DingTalkStreamClient.from_app(
                app, events=False, callback_topics=[CARD_CALLBACK_TOPIC], **self.client_options
            )
            log.info("DingTalk card clicks: listening on a Stream connection of app %s", app.app_key)
            try:
                async for message in client.messages():
                    if self._stopping is not None and self._stopping.is_set():
                        continue  # never acked: DingTalk pushes it again, to another connection
                    task = asyncio.create_task(self._answer(message))
                    self._answering.add(task)
                    task.add_done_callback(self._answering.discard)
            except DingTalkAPIError as exc:  # credentials refused: not retried until they change
                log.error("DingTalk card clicks over Stream refused: %s", exc)
                await asyncio.sleep(self.recheck)

    async def _answer(self, message: StreamMessage) -> None:
        from airflow_provider_dingtalk.stream.frames import StreamProtocolError

        if message.frame.type != "CALLBACK" or message.frame.topic != CARD_CALLBACK_TOPIC:
            await message.ack(None)
            return
        try:
            payload = message.frame.json()
        except StreamProtocolError:
            payload = None
        if not isinstance(payload, dict) or payload.get("type", "actionCallback") != "actionCallback":
            await message.ack(None)
            return
        try:
            reply = await asyncio.to_thread(self.handler.handle, payload)
        except Exception as exc:  # the card shows it; the click was not applied
            log.error("DingTalk card click failed: %s: %s", type(exc).__name__, exc)
            reply = failed_reply()
        await message.ack(reply)
