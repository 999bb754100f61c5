#!/usr/bin/env python3
"""Drives a switchboard-fixture over real WebSockets and checks the behaviour of the spec edits.

    client.py FIXTURE --mode edited|original --token-ttl-ms N

`edited`: FIXTURE was built from the spec that Tests/SpecEdit/edit_spec.py changed.
`original`: FIXTURE was built from the repository's spec; the same client shows that none of
the new behaviour is there. Every wait is for an event (a message, a close frame, a stdout
line) with a deadline, except the one that shows that nothing happens: the original fixture
must keep the client open for twice the token TTL.
Exit status 0 when every check held; 1 with the failed check on stderr otherwise.
"""
import argparse
import asyncio
import json
import signal
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

DEADLINE_S = 15.0  # for any one awaited event: generous on a loaded machine


class CheckFailed(Exception):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


class Fixture:
    """The fixture process: its port and the lines it prints on stdout."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.lines: list[str] = []
        self.changed = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, path: str) -> "Fixture":
        process = await asyncio.create_subprocess_exec(path, "--port", "0", stdout=asyncio.subprocess.PIPE)
        return cls(process)

    async def _read(self) -> None:
        while line := await self.process.stdout.readline():
            async with self.changed:
                self.lines.append(line.decode().rstrip("\n"))
                self.changed.notify_all()

    async def line(self, prefix: str) -> str:
        """The first stdout line starting with `prefix`, waiting for it up to DEADLINE_S."""
        async def first() -> str:
            async with self.changed:
                while True:
                    for line in self.lines:
                        if line.startswith(prefix):
                            return line
                    await self.changed.wait()
        try:
            return await asyncio.wait_for(first(), DEADLINE_S)
        except TimeoutError:
            raise CheckFailed(f"no stdout line {prefix!r} within {DEADLINE_S} s; got {self.lines}") from None

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), DEADLINE_S)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.reader.cancel()


async def receive(ws) -> dict:
    """The next message as JSON, waiting up to DEADLINE_S."""
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), DEADLINE_S))
    except TimeoutError:
        raise CheckFailed(f"no message within {DEADLINE_S} s") from None


async def send(ws, event: str, data=None) -> None:
    await ws.send(json.dumps({"event": event} if data is None else {"event": event, "data": data}))


async def authenticated_client(fixture: Fixture, url: str, mode: str, ttl_s: float) -> None:
    async with connect(url) as ws:
        sent_authenticate = time.monotonic()  # the expiry timer is armed after this
        await send(ws, "authenticate", {"token": "user:alice"})
        connected = await receive(ws)
        check(connected.get("event") == "connected", f"expected connected, got {connected}")
        client_id = connected["data"]["id"]
        await fixture.line(f"CONNECTED {client_id} alice")

        # The new event, then an echo: messages of one client are handled in order.
        await send(ws, "whoami_state")
        await send(ws, "echo", {"n": 1})
        first = await receive(ws)
        if mode == "edited":
            check(first == {"event": "error", "data": {"message": "State: AUTHENTICATED"}},
                  f"whoami_state: expected the new error answer, got {first}")
            first = await receive(ws)
        # original: a custom event for the messageHandler, which does not answer it.
        check(first == {"event": "echo", "data": {"n": 1}}, f"expected the echo, got {first}")

        if mode == "edited":
            try:
                extra = await asyncio.wait_for(ws.recv(), ttl_s + DEADLINE_S)
                raise CheckFailed(f"expected the close frame, got a message {extra}")
            except ConnectionClosed:
                closed_after = time.monotonic() - sent_authenticate
            except TimeoutError:
                raise CheckFailed(f"not closed within {ttl_s + DEADLINE_S} s") from None
            check(ws.close_code == 4009 and ws.close_reason == "Token expired",
                  f"expected close 4009 'Token expired', got {ws.close_code} {ws.close_reason!r}")
            # 5 ms of slack for clocks read in whole milliseconds.
            check(closed_after >= ttl_s - 0.005, f"closed {closed_after:.3f} s after authenticate, before the TTL {ttl_s} s")
            await fixture.line(f"DISCONNECTED {client_id} alice")
            print(f"edited: whoami_state answered 'State: AUTHENTICATED'; closed 4009 'Token expired' "
                  f"{closed_after:.3f} s after authenticate (TTL {ttl_s} s); DISCONNECTED printed")
        else:
            try:
                extra = await asyncio.wait_for(ws.recv(), 2 * ttl_s)
                raise CheckFailed(f"expected nothing for {2 * ttl_s} s, got a message {extra}")
            except ConnectionClosed:
                raise CheckFailed(f"closed with {ws.close_code} {ws.close_reason!r}; expected to stay open") from None
            except TimeoutError:
                pass
            check(not any(line.startswith(f"DISCONNECTED {client_id}") for line in fixture.lines),
                  "DISCONNECTED printed for a client that is still open")
            await send(ws, "echo", {"n": 2})
            check(await receive(ws) == {"event": "echo", "data": {"n": 2}}, "no echo after twice the TTL")
            print(f"original: whoami_state is a custom event (no answer); still open {2 * ttl_s} s after connected")


async def unauthenticated_client(url: str, mode: str) -> None:
    async with connect(url) as ws:
        await send(ws, "whoami_state")
        answer = await receive(ws)
        check(answer == {"event": "error", "data": {"message": "Not authenticated"}},
              f"whoami_state before authenticate: expected 'Not authenticated', got {answer}")
        print(f"{mode}: whoami_state before authenticate answered 'Not authenticated'")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixture")
    parser.add_argument("--mode", choices=["edited", "original"], required=True)
    parser.add_argument("--token-ttl-ms", type=int, required=True)
    args = parser.parse_args()

    fixture = await Fixture.start(args.fixture)
    try:
        port = (await fixture.line("LISTENING ")).split()[1]
        url = f"ws://127.0.0.1:{port}/ws"
        await unauthenticated_client(url, args.mode)
        await authenticated_client(fixture, url, args.mode, args.token_ttl_ms / 1000)
        return 0
    except CheckFailed as failure:
        print(f"client.py ({args.mode} {args.fixture}): {failure}", file=sys.stderr)
        return 1
    finally:
        await fixture.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
