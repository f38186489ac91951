// A ringcast.js subscriber for the Python tests: node js_sub.mjs URL TOPIC
// prints one JSON line per event on stdout ({"ev":"msg","seq":N,"data":…},
// {"ev":"open"}, {"ev":"gap",…}, {"ev":"reset",…}) until killed.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(here, '..', '..', '..');
const require = createRequire(path.join(ROOT, 'tests', 'package.json'));
const WebSocket = require('ws');
const { Ringcast } = await import(path.join(ROOT, 'clients', 'js', 'ringcast.js'));

const [url, topic] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const rc = new Ringcast(url, { WebSocket, minDelay: 50, maxDelay: 500 });
for (const ev of ['open', 'gap', 'reset'])
	rc.on(ev, (x) => out({ ev, ...(x && typeof x === 'object' ? x : {}) }));
rc.subscribe(topic, (data, meta) => out({ ev: 'msg', seq: meta.seq, data }));
