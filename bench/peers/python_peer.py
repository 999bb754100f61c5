"""A Python `websockets` server speaking the part of the gateway protocol the bench uses.

    python3 bench/peers/python_peer.py [--host H] [--port N]     (port 0: any free port)

What a straightforward Python implementation of the gateway costs, for `make bench`: asyncio
(uvloop when installed), one task per connection, every message parsed with `json` and every
reply serialised again. It answers `authenticate` with `user:<id>` or `anon` with `connected`
({id, userId, time}), ignores `heartbeat`, sends `echo` back to the sender and `broadcast` to
every authenticated client (sender included, one encoding for all), and prints the LISTENING /
CONNECTED / DISCONNECTED lines of docs/contract.md. No rooms, timers, Redis or encryption.
"""

import argparse
import asyncio
import datetime
import json
import signal
import sys
import uuid

import websockets
from websockets.asyncio.server import serve

members = set()   # authenticated connections, the audience of `broadcast`


def line(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def envelope(event, data):
    return json.dumps({"event": event, "data": data}, separators=(",", ":"))


async def session(ws):
    client_id, user = str(uuid.uuid4()), None
    authenticated = False
    try:
        async for raw in ws:
            try:
                message = json.loads(raw)
                event = message["event"]
            except (ValueError, TypeError, KeyError):
                await ws.send(envelope("error", {"message": "Invalid message format"}))
                continue
            data = message.get("data")
            if event == "authenticate":
                if authenticated:
                    await ws.send(envelope("error", {"message": "Already authenticated"}))
                    continue
                token = data.get("token", "") if isinstance(data, dict) else ""
                if not (token.startswith("user:") or token == "anon"):
                    await ws.send(envelope("error", {"message": "Authentication failed"}))
                    await ws.close(4003, "Authentication failed")
                    return
                user = token[5:] if token.startswith("user:") else None
                authenticated = True
                members.add(ws)
                now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
                info = {"id": client_id, "time": now.replace("+00:00", "Z")}
                if user is not None:
                    info["userId"] = user
                await ws.send(envelope("connected", info))
                line(f"CONNECTED {client_id} {user or '-'}")
            elif event == "heartbeat":
                continue
            elif not authenticated:
                await ws.send(envelope("error", {"message": "Not authenticated"}))
            elif event == "echo":
                await ws.send(envelope("echo", data))
            elif event == "broadcast":
                websockets.broadcast(members, envelope("broadcast", data))
    except websockets.ConnectionClosed:
        pass
    finally:
        if authenticated:
            members.discard(ws)
            line(f"DISCONNECTED {client_id} {user or '-'}")


async def main(host, port):
    stop = asyncio.get_running_loop().create_future()
    for number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(number, stop.set_result, None)
    async with serve(session, host, port, max_size=None, compression=None) as server:
        line(f"LISTENING {server.sockets[0].getsockname()[1]}")
        await stop
        for ws in list(members):
            await ws.close(1001, "Server shutting down")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(args.host, args.port))
