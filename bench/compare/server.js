// A Node.js `ws` broadcast server with ringcast's raw convention, for
// side-by-side runs (bench/compare/run.sh):
//   GET /sub/<topic>  subscriber: receives every message published to topic
//   GET /pub/<topic>  publisher: every message it sends goes to the topic
//   GET /echo         echoes every message
// Usage: node server.js [--port 8090] [--host 127.0.0.1] [--deflate]
// --deflate enables permessage-deflate (ws compresses per subscriber: it has
// no compress-once path); off by default, as in ws itself.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const port = Number(opt('--port', '8090'));
const host = opt('--host', '127.0.0.1');
const deflate = args.includes('--deflate');

const topics = new Map(); // topic -> Set of subscriber sockets
const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 16 << 20,
  perMessageDeflate: deflate ? { threshold: 0, serverNoContextTakeover: true } : false,
});

function topicOf(path, prefix) {
  try {
    return decodeURIComponent(path.slice(prefix.length));
  } catch (e) {
    return '';
  }
}

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'content-type': 'text/plain' });
  res.end('upgrade required\n');
});

server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?')[0];
  let kind = null, topic = '';
  if (path.startsWith('/sub/')) { kind = 'sub'; topic = topicOf(path, '/sub/'); }
  else if (path.startsWith('/pub/')) { kind = 'pub'; topic = topicOf(path, '/pub/'); }
  else if (path === '/echo') kind = 'echo';
  if (!kind || (kind !== 'echo' && topic.length === 0)) {
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (kind === 'sub') {
      let set = topics.get(topic);
      if (!set) topics.set(topic, (set = new Set()));
      set.add(ws);
      ws.on('message', () => ws.close(1003, 'subscribers do not send'));
      ws.on('close', () => {
        set.delete(ws);
        if (set.size === 0 && topics.get(topic) === set) topics.delete(topic);
      });
    } else if (kind === 'pub') {
      ws.on('message', (data, isBinary) => {
        const set = topics.get(topic);
        if (!set) return;
        for (const s of set) if (s.readyState === 1) s.send(data, { binary: isBinary });
      });
    } else {
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    }
    ws.on('error', () => {});
  });
});

server.listen(port, host, () => {
  console.log(`ws compare server on ${host}:${port} (deflate ${deflate ? 'on' : 'off'}, pid ${process.pid})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
