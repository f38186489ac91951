"""A python3-websockets echo server, a peer for build/echo-client.

usage: py_echo_server.py [JSON]  where JSON holds ServerPerMessageDeflateFactory
keyword arguments, or is "off" for no compression.  Prints "listening on port
N" on stderr once bound to 127.0.0.1:0, and on stdout one line per connection
"open ext=<extension header>" and one per message "msg <text|binary> <len>".
The path /missing is refused with 404; the text message "close-me" makes the
server close with 4001 "server says bye"; "ping-me" is echoed once the
client answered a ping; "fragment-me..." is echoed in four fragments.  Exits on SIGTERM."""
import asyncio
import http
import json
import signal
import sys

import websockets
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory


async def echo(ws, path=None):
    print(f"open ext={ws.response_headers.get('Sec-WebSocket-Extensions', '')}", flush=True)
    async for m in ws:
        print(f"msg {'text' if isinstance(m, str) else 'binary'} "
              f"{len(m.encode() if isinstance(m, str) else m)}", flush=True)
        if m == "close-me":
            await ws.close(4001, "server says bye")
            return
        if m == "ping-me":
            await asyncio.wait_for(await ws.ping(b"are you there"), 5)
        if isinstance(m, str) and m.startswith("fragment-me"):
            await ws.send([m[:3], "", m[3:7], m[7:]])
            continue
        await ws.send(m)


async def refuse(path, headers):
    if path == "/missing":
        return http.HTTPStatus.NOT_FOUND, [], b"no such path\n"
    return None


async def main():
    arg = sys.argv[1] if len(sys.argv) > 1 else "{}"
    kw = {"compression": None} if arg == "off" else {
        "extensions": [ServerPerMessageDeflateFactory(**json.loads(arg))]}
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=None, process_request=refuse,
                                **kw) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"listening on port {port}", file=sys.stderr, flush=True)
        await stop


asyncio.run(main())
