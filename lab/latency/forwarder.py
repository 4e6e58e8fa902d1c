"""A delaying TCP/UDP forwarder: the lab's stand-in for a server far away (the kernel here has no
netem qdisc). Every chunk of bytes, in each direction, is held for DELAY before it is passed on, so
one round trip costs twice the delay (25 ms each way = 50 ms RTT).

    forwarder.py --listen 127.0.2.10 --to 127.0.0.10 --tcp 25,465,587 --udp 53 --delay-ms 25

Used by lab/components/80-latency.sh; loopback only; bounded: idle connections close after 300 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

IDLE_S = 300
CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy one direction, each chunk delivered ``delay`` seconds after it arrived (order kept)."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            data = await asyncio.wait_for(reader.read(CHUNK), IDLE_S)
            await queue.put((loop.time() + delay, data))
            if not data:
                break
        await sender
    except (TimeoutError, OSError):
        sender.cancel()


async def _tcp(listen: str, target: str, port: int, delay: float) -> asyncio.Server:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            # Connect from the address the client dialled, so the server sees one client per far address.
            server_reader, server_writer = await asyncio.open_connection(target, port, local_addr=(listen, 0))
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(_pipe(client_reader, server_writer, delay), _pipe(server_reader, client_writer, delay))
        finally:
            for w in (client_writer, server_writer):
                with contextlib.suppress(OSError):
                    w.close()
    return await asyncio.start_server(handle, listen, port, reuse_address=True)


class _UdpRelay(asyncio.DatagramProtocol):
    """UDP (DNS): each client datagram goes out on a socket of its own, the answer comes back later."""

    def __init__(self, listen: str, target: str, port: int, delay: float) -> None:
        self.listen, self.target, self.port, self.delay = listen, target, port, delay
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        asyncio.get_running_loop().create_task(self._relay(data, addr))

    async def _relay(self, data: bytes, client) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self.delay)
        answered: asyncio.Future[bytes] = loop.create_future()

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, reply: bytes, addr) -> None:
                if not answered.done():
                    answered.set_result(reply)

        transport, _ = await loop.create_datagram_endpoint(Back, remote_addr=(self.target, self.port))
        try:
            transport.sendto(data)
            reply = await asyncio.wait_for(answered, 10)
        except TimeoutError:
            return
        finally:
            transport.close()
        await asyncio.sleep(self.delay)
        if self.transport is not None:
            self.transport.sendto(reply, client)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--to", required=True)
    parser.add_argument("--tcp", default="")
    parser.add_argument("--udp", default="")
    parser.add_argument("--delay-ms", type=float, default=25.0)
    args = parser.parse_args()
    delay = args.delay_ms / 1000
    ports = [int(p) for p in args.tcp.split(",") if p]
    servers = [await _tcp(args.listen, args.to, port, delay) for port in ports]
    loop = asyncio.get_running_loop()
    for port in (int(p) for p in args.udp.split(",") if p):
        await loop.create_datagram_endpoint(lambda port=port: _UdpRelay(args.listen, args.to, port, delay),
                                            local_addr=(args.listen, port))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    asyncio.run(main())
