// Chromium's own EventSource (headless, through playwright-core) on
// GET /events/<a>,<b> of build/ringcast, through a TCP proxy the test cuts:
// after the cut the browser reconnects by itself (retry: from sse_retry)
// with Last-Event-ID, and messages published while it was away arrive once
// each, for both topics: no duplicate and no hole.  A stream the broker
// ends at SIGTERM is not an error for the page until the reconnect fails.
import assert from 'node:assert/strict';
import { startProxy } from '../browser/proxy.mjs';
import { httpPublish, startBroker, waitFor, withChromium } from '../browser/helpers.mjs';

const T = 20000;

async function publishRound(broker, from, to) {
	for (let i = from; i <= to; i++)
		await httpPublish(broker.base, i % 3 ? 'sa' : 's,b', JSON.stringify({ i }), 'application/json');
}

function bySeq(got, topic) {
	return got.filter((m) => m.topic === topic).map((m) => m.seq);
}

function range(a, b) {
	return Array.from({ length: b - a + 1 }, (_, k) => a + k);
}

async function run(ctx, broker, proxy) {
	const page = ctx.pages()[0] || await ctx.newPage();
	const pageErrors = [];
	page.on('pageerror', (e) => pageErrors.push(e.message));
	await page.goto(`http://127.0.0.1:${proxy.port}/healthz`);
	await page.evaluate(() => {
		window.got = [];
		window.ids = [];
		window.welcomes = [];
		window.errors = 0;
		const es = new EventSource('/events/sa,s%2Cb');
		window.es = es;
		es.addEventListener('welcome', (e) => window.welcomes.push(JSON.parse(e.data)));
		es.addEventListener('msg', (e) => {
			const m = JSON.parse(e.data);
			window.got.push({ topic: m.topic, seq: m.seq, i: m.data.i });
			window.ids.push(e.lastEventId);
		});
		es.addEventListener('gap', (e) => window.got.push({ gap: JSON.parse(e.data) }));
		es.onerror = () => { window.errors++; };
	});
	await page.waitForFunction(() => window.welcomes.length === 1, null, { timeout: T });
	const epoch = await page.evaluate(() => window.welcomes[0].epoch);
	assert.equal(epoch, broker.epoch, 'the welcome carries the epoch');

	await publishRound(broker, 1, 30);
	await page.waitForFunction(() => window.got.length === 30, null, { timeout: T });

	// Cut, keep the browser out while 30 more are published, let it back.
	proxy.setDown(true);
	assert.ok(proxy.dropAll() >= 1, 'the stream went through the proxy');
	await page.waitForFunction(() => window.errors >= 1, null, { timeout: T });
	await publishRound(broker, 31, 60);
	proxy.setDown(false);
	await page.waitForFunction(() => window.welcomes.length >= 2 && window.got.length >= 60, null,
		{ timeout: T });
	await publishRound(broker, 61, 66);
	await page.waitForFunction(() => window.got.length >= 66, null, { timeout: T });

	const got = await page.evaluate(() => window.got);
	assert.deepEqual(got.filter((m) => m.gap), [], 'no gap: history reached back');
	// Order holds per topic; a replay sends one topic's history, then the next's.
	assert.deepEqual(got.map((m) => m.i).sort((x, y) => x - y), range(1, 66), 'every message once');
	const nb = range(1, 66).filter((i) => i % 3 === 0).length;
	assert.deepEqual(bySeq(got, 'sa'), range(1, 66 - nb), 'topic sa: no duplicate, no hole');
	assert.deepEqual(bySeq(got, 's,b'), range(1, nb), 'topic s,b: no duplicate, no hole');
	const ids = await page.evaluate(() => window.ids);
	assert.equal(ids.at(-1), `${epoch}/${66 - nb},${nb}`, 'lastEventId holds both positions');
	assert.ok(proxy.accepted >= 2, `the browser reconnected (${proxy.accepted} connections)`);
	assert.deepEqual(pageErrors, []);
	await page.evaluate(() => window.es.close());
}

const broker = await startBroker(['--threads', '2', '--sse-retry', '0.2']);
const proxy = await startProxy(broker.port);
try {
	await withChromium([], (ctx) => run(ctx, broker, proxy));
	console.log('ok   chromium EventSource resumes two topics by Last-Event-ID across a cut');
} finally {
	await proxy.close();
	await broker.stop();
}
