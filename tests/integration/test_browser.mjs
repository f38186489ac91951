// The demo page (served by build/ringcast at /) in headless Chromium, loaded
// through a TCP proxy the test controls: subscribe in the UI, publish over
// HTTP and from the UI, see the messages on the page; cut the page's
// connection while publishing goes on and see it reconnect and resume with
// every message, in order. Saves build/artifacts/demo.png.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startProxy } from '../browser/proxy.mjs';
import { startBroker, httpPublish, waitFor, withTimeout, withChromium, BUILD, CHROMIUM }
	from '../browser/helpers.mjs';

process.env.PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD = '1'; // Debian's chromium only
if (!fs.existsSync(CHROMIUM))
	throw new Error(`${CHROMIUM} not found: apt-get install chromium (make deps)`);

const T = 20000; // bound on every single wait
const TOPIC = 'demo';

async function main() {
	// Two loop threads: the page's connection and the test's publishes may
	// land on different threads, as in production.
	const broker = await startBroker(['--threads', '2']);
	const proxy = await startProxy(broker.port);
	try {
		await withChromium([], (ctx) => run(ctx, broker, proxy));
	} finally {
		await proxy.close();
		await broker.stop();
	}
}

// The (seq, text) of every message row on the page, top to bottom.
function rows(page) {
	return page.$$eval('#log li.msg', (lis) => lis.map((li) => ({
		seq: Number(li.dataset.seq), topic: li.dataset.topic, text: li.querySelector('.data').textContent,
	})));
}

async function run(ctx, broker, proxy) {
	const page = ctx.pages()[0] || await ctx.newPage();
	const origin = `http://127.0.0.1:${proxy.port}`;
	const pageErrors = [];
	const foreign = [];
	page.on('pageerror', (e) => pageErrors.push(e.message));
	page.on('request', (r) => {
		if (!r.url().startsWith(origin) && !r.url().startsWith(`ws://127.0.0.1:${proxy.port}/`))
			foreign.push(r.url());
	});

	await page.goto(`${origin}/`);
	await page.waitForFunction(() => document.querySelector('#status').classList.contains('connected'));
	assert.match(await page.textContent('#status'), /connected · epoch [0-9a-f]+/);

	// Subscribe through the UI.
	await page.fill('#sub-topic', TOPIC);
	await page.click('#sub-button');
	await page.waitForSelector(`#topics li[data-topic="${TOPIC}"]`);
	await waitFor(async () => (await (await fetch(`${broker.base}/topics`)).json()).topics
		.some((t) => t.topic === TOPIC && t.subscribers === 1), T, 'the page\'s subscription to reach the broker');

	const expected = []; // texts in seq order
	const publish = async (text) => {
		const r = await httpPublish(broker.base, TOPIC, text);
		assert.equal(r.seq, expected.length + 1);
		expected.push(text);
	};
	await publish('hello from the test');
	await page.waitForSelector('#log li.msg[data-seq="1"]');
	assert.deepEqual(await rows(page), [{ seq: 1, topic: TOPIC, text: 'hello from the test' }]);

	// Publish from the page's form (JSON text goes out as JSON).
	await page.fill('#pub-text', '{"from":"the page","n":2}');
	await page.click('#pub-button');
	await page.waitForFunction(() => /published to demo as #2/.test(document.querySelector('#pub-result').textContent));
	expected.push('{"from":"the page","n":2}');
	await page.waitForSelector('#log li.msg[data-seq="2"]');

	// Cut the page's connections (and refuse new ones) while publishing goes on.
	for (let cut = 0; cut < 2; cut++) {
		proxy.setDown(true);
		assert.ok(proxy.dropAll() >= 1, 'the page had a connection through the proxy');
		await page.waitForFunction(() => !window.ringcastDemo.rc.connected);
		await page.waitForFunction(() => document.querySelector('#status').classList.contains('connecting'));
		for (let i = 0; i < 15; i++)
			await publish(`during cut ${cut}, message ${i}`);
		proxy.setDown(false);
		await page.waitForFunction(() => document.querySelector('#status').classList.contains('connected'));
		for (let i = 0; i < 5; i++)
			await publish(`after cut ${cut}, message ${i}`);
	}
	await page.waitForSelector(`#log li.msg[data-seq="${expected.length}"]`);
	const got = await rows(page);
	assert.deepEqual(got.map((r) => r.seq), expected.map((_, i) => i + 1), 'every seq once, in order');
	assert.deepEqual(got.map((r) => r.text), expected);
	const notes = await page.$$eval('#log li.note .data', (els) => els.map((e) => e.textContent));
	assert.equal(notes.filter((t) => /reconnected/.test(t)).length, 2);
	assert.ok(!notes.some((t) => /lost \(beyond/.test(t)), 'no gap reported');
	assert.equal(await page.textContent(`#topics li[data-topic="${TOPIC}"] .count`), String(expected.length));

	// Some traffic for the chart (a burst per /stats sample the page takes),
	// then the screenshot.
	let sent = 0;
	for (const burst of [6, 14, 9, 20, 12]) {
		const samples = await page.evaluate(() => window.ringcastDemo.series.in.length);
		for (let i = 0; i < burst; i++)
			await httpPublish(broker.base, TOPIC, `chart ${++sent}`);
		await page.waitForFunction((n) => window.ringcastDemo.series.in.length > n, samples);
	}
	await page.waitForFunction(() => window.ringcastDemo.series.in.some((v) => v > 0));
	await page.waitForSelector(`#log li.msg[data-seq="${expected.length + sent}"]`);
	assert.match(await page.textContent('#fig-conns'), /^\d+$/);
	fs.mkdirSync(path.join(BUILD, 'artifacts'), { recursive: true });
	const shot = path.join(BUILD, 'artifacts', 'demo.png');
	await page.screenshot({ path: shot, fullPage: true });
	assert.ok(fs.statSync(shot).size > 10000, 'a non-trivial screenshot');

	assert.deepEqual(pageErrors, [], 'no uncaught errors on the page');
	assert.deepEqual(foreign, [], 'the page loads nothing from elsewhere');
	console.log(`ok: ${expected.length} messages in order across 2 cuts; screenshot ${shot}`);
}

await withTimeout(main(), 240000, 'the whole browser test');
