"""When the database goes away, OFREP keeps serving the last values instead of failing.

Failing would make every application fall back to its code default, which silently turns a
disabled tool back on in the middle of an incident. The outage is real: PostgreSQL behind a
local TCP proxy that the test cuts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
from sqlalchemy import event

from actions.errors import RetryableError
from bot.controls import BuiltinControlStore
from bot.store.database import Database
from tests.conftest import Clock, DatabaseUnderTest

TOOL = "support.tools.web_search.enabled"


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL until :meth:`cut` drops every connection."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.mark.postgres
async def test_last_values_are_served_while_the_database_is_down(
    postgres_database: DatabaseUnderTest, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    direct: Database = postgres_database.make()
    await direct.migrate()
    proxy = CuttableProxy(direct.engine.url.port or 5432)
    port = await proxy.start()
    through_proxy = Database(
        direct.engine.url.set(port=port).render_as_string(hide_password=False),
        connect_args={**postgres_database.connect_args, "timeout": 2},
    )
    try:
        store = BuiltinControlStore(through_proxy, clock, max_staleness=0)
        await store.write(TOOL, False, actor="ballast", reason="disable_tool")
        assert (await store.current()).values[TOOL].value is False

        await proxy.cut()
        with caplog.at_level(logging.WARNING, logger="bot.controls.store"):
            during = await store.current()
        assert during.values[TOOL].value is False
        assert "serving control values read" in caplog.text
        with pytest.raises(RetryableError):  # writes and direct reads say so
            await store.write(TOOL, True, actor="ballast", reason="undo")
        with pytest.raises(RetryableError):
            await store.read(TOOL)
        # The failed write expired the copy; the database is still down, so it is served.
        assert (await store.current()).values[TOOL].value is False

        # A process that never read the values has nothing to serve: it fails, and fails
        # fast (no connection attempt per request) until it retries a second later.
        # Counted where SQLAlchemy opens or hands out a connection: any database round trip.
        attempts: list[str] = []
        sync_engine = through_proxy.engine.sync_engine
        event.listen(sync_engine, "do_connect", lambda *_: attempts.append("connect"))
        event.listen(sync_engine.pool, "checkout", lambda *_: attempts.append("checkout"))
        cold = BuiltinControlStore(through_proxy, clock)
        with pytest.raises(RetryableError):
            await cold.current()
        tried = len(attempts)
        assert tried >= 1, "the first read never tried the database"
        with pytest.raises(RetryableError):
            await cold.current()
        assert len(attempts) == tried, "the second read went to the database again"
    finally:
        await through_proxy.close()
        await direct.close()
