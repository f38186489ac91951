// A Node `ws` echo server, a peer for build/echo-client.
// usage: node node_echo_server.mjs [JSON]: JSON is ws's perMessageDeflate
// option (false: no compression).  Prints "listening on port N" on stderr,
// and on stdout "open ext=<extension header>" per connection and
// "msg <text|binary> <len>" per message.  Exits on SIGTERM.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'package.json'));
const { WebSocketServer } = require('ws');

const perMessageDeflate = JSON.parse(process.argv[2] || 'true');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate,
	maxPayload: 64 << 20 });
wss.on('headers', (headers) => {
	const ext = headers.find((h) => /^sec-websocket-extensions:/i.test(h));
	process.stdout.write(`open ext=${ext ? ext.replace(/^[^:]*:\s*/, '') : ''}\n`);
});
wss.on('connection', (ws) => {
	ws.on('message', (data, isBinary) => {
		process.stdout.write(`msg ${isBinary ? 'binary' : 'text'} ${data.length}\n`);
		ws.send(data, { binary: isBinary });
	});
	ws.on('error', () => {});
});
wss.on('listening', () => process.stderr.write(`listening on port ${wss.address().port}\n`));
process.on('SIGTERM', () => {
	for (const c of wss.clients) c.terminate();
	wss.close(() => process.exit(0));
});
