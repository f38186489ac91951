// ringcast.js in headless Chromium behind an HTTP proxy that refuses
// WebSocket upgrades (403) and forwards everything else: after sseAfter
// failed connects the client falls back to Server-Sent Events, receives and
// publishes (POST /publish) through the proxy, adds a topic (a new stream
// that resumes the first), and across a cut resumes with no duplicate and
// no hole.  The demo page, behind the same proxy, says it is on SSE.
import assert from 'node:assert/strict';
import net from 'node:net';
import { startBroker, withChromium, withTimeout } from '../browser/helpers.mjs';

const T = 20000;

// Forwards each connection to the broker once its first request head is
// in, unless that request asks for an upgrade.
function startNoUpgradeProxy(target) {
	const pairs = new Set();
	let refused = 0;
	const server = net.createServer((client) => {
		let head = Buffer.alloc(0);
		const onData = (d) => {
			head = Buffer.concat([head, d]);
			if (head.indexOf('\r\n\r\n') < 0) {
				if (head.length > 65536)
					client.destroy();
				return;
			}
			client.off('data', onData);
			if (/^upgrade:\s*websocket/im.test(head.toString('latin1'))) {
				refused++;
				client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
				return;
			}
			const up = net.connect(target, '127.0.0.1');
			const pair = { client, up };
			pairs.add(pair);
			const end = () => {
				pairs.delete(pair);
				client.destroy();
				up.destroy();
			};
			for (const s of [client, up]) {
				s.on('error', end);
				s.on('close', end);
			}
			up.write(head);
			client.pipe(up);
			up.pipe(client);
		};
		client.on('data', onData);
		client.on('error', () => client.destroy());
	});
	return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
		port: server.address().port,
		get refused() { return refused; },
		dropAll() {
			for (const { client, up } of [...pairs]) {
				client.destroy();
				up.destroy();
			}
			pairs.clear();
		},
		close() {
			this.dropAll();
			return new Promise((r) => server.close(() => r()));
		},
	})));
}

async function clientFallsBack(ctx, proxy) {
	const page = await ctx.newPage();
	const pageErrors = [];
	page.on('pageerror', (e) => pageErrors.push(e.message));
	await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
	await page.evaluate(async () => {
		const { Ringcast } = await import('/ringcast.js');
		window.got = { a: [], b: [] };
		window.opens = [];
		const rc = new Ringcast({ minDelay: 50, maxDelay: 200, sseAfter: 3 });
		window.rc = rc;
		rc.on('open', (e) => window.opens.push(e));
		rc.subscribe('fa', (d, meta) => window.got.a.push(meta.seq));
		await new Promise((r) => rc.on('open', r));
	});
	const opens = await page.evaluate(() => window.opens);
	assert.equal(opens.length, 1);
	assert.equal(opens[0].transport, 'sse', 'fell back to SSE');
	assert.equal(await page.evaluate(() => window.rc.transport), 'sse');
	assert.ok(proxy.refused >= 3, `${proxy.refused} upgrades refused before the fallback`);

	// Publishing goes through POST /publish; the stream delivers it.
	for (let i = 1; i <= 5; i++)
		assert.equal((await page.evaluate((i) => window.rc.publish('fa', { i }), i)).seq, i);
	await page.waitForFunction(() => window.got.a.length === 5, null, { timeout: T });

	// Another topic: a new stream that resumes the first where it was.
	await page.evaluate(() => window.rc.subscribe('fb', (d, meta) => window.got.b.push(meta.seq)).ready);
	for (let i = 6; i <= 10; i++) {
		await page.evaluate((i) => window.rc.publish('fa', { i }), i);
		await page.evaluate((i) => window.rc.publish('fb', { i }), i);
	}
	await page.waitForFunction(() => window.got.a.length === 10 && window.got.b.length === 5,
		null, { timeout: T });

	// A cut: the browser's EventSource reconnects by itself with Last-Event-ID;
	// a topic subscribed meanwhile gets a new stream once it is back.
	proxy.dropAll();
	await page.waitForFunction(() => !window.rc.connected, null, { timeout: T });
	await page.evaluate(() => {
		window.got.c = [];
		window.subC = window.rc.subscribe('fc', (d, meta) => window.got.c.push(meta.seq));
	});
	await fetchPublish(proxy, 'fa', 11);
	await fetchPublish(proxy, 'fb', 12);
	await page.waitForFunction(() => window.opens.length === 2 && window.got.a.length === 11 &&
		window.got.b.length === 6, null, { timeout: T });
	await page.evaluate(() => window.subC.ready);
	await fetchPublish(proxy, 'fc', 13);
	await page.waitForFunction(() => window.got.c.length === 1, null, { timeout: T });
	const got = await page.evaluate(() => window.got);
	assert.deepEqual(got.a, Array.from({ length: 11 }, (_, k) => k + 1), 'fa: no duplicate, no hole');
	assert.deepEqual(got.b, [1, 2, 3, 4, 5, 6], 'fb: no duplicate, no hole');
	assert.deepEqual(pageErrors, []);
	await page.evaluate(() => window.rc.close());
	await page.close();
}

async function fetchPublish(proxy, topic, i) {
	const r = await withTimeout(fetch(`http://127.0.0.1:${proxy.port}/publish/${topic}`, {
		method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ i }),
	}), 5000, 'publish');
	assert.equal(r.status, 200);
}

async function demoPageShowsTransport(ctx, proxy) {
	const page = await ctx.newPage();
	await page.goto(`http://127.0.0.1:${proxy.port}/`);
	await page.waitForFunction(() => document.getElementById('status').dataset.transport === 'sse',
		null, { timeout: T });
	assert.match(await page.textContent('#status'), /Server-Sent Events/);
	await page.close();
	// Told to: ?transport=sse skips the WebSocket attempts.
	const before = proxy.refused;
	const forced = await ctx.newPage();
	await forced.goto(`http://127.0.0.1:${proxy.port}/?transport=sse`);
	await forced.waitForFunction(() => document.getElementById('status').dataset.transport === 'sse',
		null, { timeout: T });
	assert.equal(proxy.refused, before, 'no upgrade tried when told to use SSE');
	await forced.close();
}

const broker = await startBroker(['--threads', '2', '--sse-retry', '0.2']);
const proxy = await startNoUpgradeProxy(broker.port);
try {
	await withChromium([], async (ctx) => {
		await clientFallsBack(ctx, proxy);
		console.log('ok   ringcast.js falls back to SSE behind a proxy that refuses upgrades');
		await demoPageShowsTransport(ctx, proxy);
		console.log('ok   the demo page shows the transport');
	});
} finally {
	await proxy.close();
	await broker.stop();
}
