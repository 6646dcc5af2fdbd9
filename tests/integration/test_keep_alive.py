"""Azurite must keep idle connections open longer than our clients do, as Azure does (minutes).

aiohttp reuses a pooled connection for up to 15 s. Node, and so Azurite by default, closes an idle
one after 5 s. A connection the server closes just as a busy client reuses it fails the request,
and POSTs (job puts, $batch transactions) are not retried by the SDKs: a full benchmark run failed
a claim that way."""
import asyncio
import re

CLIENT_KEEP_ALIVE_SECONDS = 15  # aiohttp's TCPConnector default, which azure-core's transport uses


async def keep_alive(port: int, wait: float) -> tuple[int, bool]:
    """The keep-alive timeout the service advertises, and whether it kept a connection idle for `wait`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        # Any answer will do (it is an unsigned request): HEAD, so that it carries no body.
        writer.write(f"HEAD /devstoreaccount1?comp=list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        advertised = int(re.search(r"keep-alive: *timeout=(\d+)", head).group(1))
        try:
            closed = await asyncio.wait_for(reader.read(1), timeout=wait) == b""
        except asyncio.TimeoutError:
            closed = False
        return advertised, not closed
    finally:
        writer.close()


async def test_azurite_keeps_an_idle_connection_longer_than_aiohttp_reuses_one(emulator):
    # Past Node's 5 s; waiting out the whole 15 s would make every test run 15 s longer.
    results = await asyncio.gather(*(keep_alive(port, 6) for port in (emulator.table_port, emulator.queue_port)))
    for advertised, kept in results:
        assert kept and advertised > CLIENT_KEEP_ALIVE_SECONDS
