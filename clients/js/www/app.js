// The demo page: subscribe, watch messages arrive, publish, and a live
// chart of the broker's /stats. Uses only ringcast.js and the DOM.
import { Ringcast } from '/ringcast.js';

const $ = (id) => document.getElementById(id);
const MAX_LOG = 1000; // log entries kept on the page
const SAMPLES = 60; // chart points (one per second)

// ws(s)://<this page's host>/ws, falling back to Server-Sent Events when
// WebSocket does not get through; ?transport=sse (or websocket) forces one.
const rc = new Ringcast({ transport: new URLSearchParams(location.search).get('transport') || 'auto' });
const subs = new Map(); // topic -> {sub, count, el}

// --- connection status ---

function setStatus(cls, text) {
	const el = $('status');
	el.className = `status ${cls}`;
	el.textContent = text;
}

rc.on('open', ({ epoch, reconnected, transport }) => {
	const how = transport === 'sse' ? 'Server-Sent Events' : 'WebSocket';
	setStatus('connected', `connected${epoch ? ` · epoch ${epoch}` : ''} · ${how}`);
	$('status').dataset.transport = transport;
	if (reconnected)
		note('reconnected; subscriptions resumed');
});
rc.on('close', ({ wasOpen, willReconnect, delay }) => {
	if (!willReconnect)
		return setStatus('down', 'disconnected');
	setStatus('connecting', `reconnecting in ${(delay / 1000).toFixed(1)} s…`);
	if (wasOpen)
		note('connection lost; reconnecting', true);
});
rc.on('gap', ({ topic, from, to }) => note(`${topic}: messages ${from}–${to} were lost (beyond the history)`, true));
rc.on('reset', ({ topics }) => note(`the broker restarted: numbering restarted for ${topics.join(', ') || 'all topics'}`));
rc.on('error', (e) => {
	if (e.code !== 'socket') // connection errors already show in the status
		note(e.message, true);
});

// --- the message log ---

const log = $('log');

function time() {
	return new Date().toLocaleTimeString([], { hour12: false });
}

function show(data) {
	if (data instanceof Uint8Array) {
		const hex = Array.from(data.subarray(0, 32), (b) => b.toString(16).padStart(2, '0')).join(' ');
		return `[${data.length} bytes] ${hex}${data.length > 32 ? ' …' : ''}`;
	}
	return typeof data === 'string' ? data : JSON.stringify(data);
}

function append(li) {
	const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 30;
	log.append(li);
	while (log.childElementCount > MAX_LOG)
		log.firstElementChild.remove();
	$('empty-log').hidden = true;
	if (atBottom)
		log.scrollTop = log.scrollHeight;
}

function row(cells) {
	const li = document.createElement('li');
	for (const [cls, text] of cells) {
		const span = document.createElement('span');
		span.className = cls;
		span.textContent = text;
		li.append(span);
	}
	return li;
}

function note(text, bad = false) {
	const li = row([['time', time()], ['topic', ''], ['seq', ''], ['data', text]]);
	li.className = bad ? 'note bad' : 'note';
	append(li);
}

function onMessage(data, meta) {
	const li = row([['time', time()], ['topic', meta.topic], ['seq', `#${meta.seq}`], ['data', show(data)]]);
	li.className = 'msg';
	li.dataset.topic = meta.topic;
	li.dataset.seq = String(meta.seq);
	append(li);
	const s = subs.get(meta.topic);
	if (s)
		s.countEl.textContent = String(++s.count);
}

$('clear-log').addEventListener('click', () => {
	log.replaceChildren();
	$('empty-log').hidden = false;
});

// --- subscriptions ---

function renderTopics() {
	$('no-topics').hidden = subs.size > 0;
}

function subscribe(topic) {
	if (subs.has(topic))
		return;
	const sub = rc.subscribe(topic, onMessage);
	const li = document.createElement('li');
	li.dataset.topic = topic;
	const name = document.createElement('span');
	name.textContent = topic;
	const countEl = document.createElement('span');
	countEl.className = 'count';
	countEl.textContent = '0';
	const x = document.createElement('button');
	x.type = 'button';
	x.title = `unsubscribe from ${topic}`;
	x.textContent = '×';
	x.addEventListener('click', () => {
		sub.unsubscribe();
		subs.delete(topic);
		li.remove();
		renderTopics();
	});
	li.append(name, countEl, x);
	$('topics').append(li);
	subs.set(topic, { sub, count: 0, countEl });
	renderTopics();
	sub.ready.then(({ seq }) => li.title = `subscribed at seq ${seq}`, () => {
		subs.delete(topic);
		li.remove();
		renderTopics();
	});
}

$('sub-form').addEventListener('submit', (ev) => {
	ev.preventDefault();
	const topic = $('sub-topic').value.trim();
	if (!topic)
		return;
	subscribe(topic);
	$('sub-topic').value = '';
	if (!$('pub-topic').value)
		$('pub-topic').value = topic;
});

// --- publishing ---

$('pub-form').addEventListener('submit', async (ev) => {
	ev.preventDefault();
	const topic = $('pub-topic').value.trim();
	const text = $('pub-text').value;
	let data = text;
	try {
		data = JSON.parse(text);
	} catch (e) { /* not JSON: a string */ }
	const out = $('pub-result');
	out.className = 'hint';
	out.textContent = rc.connected ? 'publishing…' : 'queued until reconnected…';
	try {
		const { seq } = await rc.publish(topic, data);
		out.className = 'hint ok';
		out.textContent = `published to ${topic} as #${seq}`;
	} catch (e) {
		out.className = 'hint bad';
		out.textContent = e.message.replace(/^Ringcast: /, '');
	}
});

// --- live chart of /stats ---

const series = { in: [], out: [], conns: [] };
window.ringcastDemo = { rc, subs, series }; // for the console (and the tests)
let prev = null; // {t, in, out}
const canvas = $('chart');
const css = getComputedStyle(document.documentElement);
const colour = (name) => css.getPropertyValue(name).trim();

// A round axis maximum for 4 grid lines: a step of 1, 2, 2.5 or 5 × 10^n,
// at least 1, so that 4 steps reach v.
function niceMax(v) {
	const raw = Math.max(v, 4) / 4;
	const p = 10 ** Math.floor(Math.log10(raw));
	for (const m of [1, 2, 2.5, 5, 10]) {
		if (m * p >= raw && Number.isInteger(m * p))
			return 4 * m * p;
	}
	return 40 * p;
}

function fmt(v) {
	if (v >= 1e6)
		return `${(v / 1e6).toFixed(1)}M`;
	if (v >= 1e4)
		return `${(v / 1e3).toFixed(0)}k`;
	if (v >= 1e3)
		return `${(v / 1e3).toFixed(1)}k`;
	return v >= 10 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1);
}

function duration(s) {
	if (s < 60)
		return `${s} s`;
	if (s < 3600)
		return `${Math.floor(s / 60)} min ${s % 60} s`;
	if (s < 86400)
		return `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`;
	return `${Math.floor(s / 86400)} d ${Math.floor(s / 3600) % 24} h`;
}

function draw() {
	const dpr = window.devicePixelRatio || 1;
	const w = canvas.clientWidth;
	const h = canvas.clientHeight;
	if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
		canvas.width = Math.round(w * dpr);
		canvas.height = Math.round(h * dpr);
	}
	const g = canvas.getContext('2d');
	g.setTransform(dpr, 0, 0, dpr, 0, 0);
	g.clearRect(0, 0, w, h);
	const pad = { l: 44, r: 40, t: 10, b: 20 };
	const pw = w - pad.l - pad.r;
	const ph = h - pad.t - pad.b;
	const rateMax = niceMax(Math.max(...series.in, ...series.out));
	const connMax = niceMax(Math.max(...series.conns));
	const x = (i) => pad.l + (pw * i) / (SAMPLES - 1);
	const y = (v, max) => pad.t + ph - (ph * v) / max;

	g.font = '11px system-ui, sans-serif';
	g.lineWidth = 1;
	// grid and axis labels: rates on the left, connections on the right
	for (let k = 0; k <= 4; k++) {
		const yy = Math.round(pad.t + (ph * k) / 4) + 0.5;
		g.strokeStyle = colour('--line');
		g.beginPath();
		g.moveTo(pad.l, yy);
		g.lineTo(pad.l + pw, yy);
		g.stroke();
		g.fillStyle = colour('--muted');
		g.textAlign = 'right';
		g.textBaseline = 'middle';
		g.fillText(fmt(rateMax * (1 - k / 4)), pad.l - 6, yy);
		g.fillStyle = colour('--conns');
		g.textAlign = 'left';
		g.fillText(fmt(connMax * (1 - k / 4)), pad.l + pw + 6, yy);
	}
	g.fillStyle = colour('--muted');
	g.textAlign = 'left';
	g.textBaseline = 'alphabetic';
	g.fillText('60 s ago', pad.l, h - 4);
	g.textAlign = 'right';
	g.fillText('now', pad.l + pw, h - 4);

	// Newest sample at the right edge.
	const line = (vals, max, col, fill, dash) => {
		if (vals.length === 0)
			return;
		const off = SAMPLES - vals.length;
		g.beginPath();
		vals.forEach((v, i) => (i ? g.lineTo(x(off + i), y(v, max)) : g.moveTo(x(off + i), y(v, max))));
		g.setLineDash(dash || []);
		g.strokeStyle = col;
		g.lineWidth = 2;
		g.stroke();
		g.setLineDash([]);
		if (fill) {
			g.lineTo(x(SAMPLES - 1), y(0, max));
			g.lineTo(x(off), y(0, max));
			g.closePath();
			g.globalAlpha = 0.12;
			g.fillStyle = col;
			g.fill();
			g.globalAlpha = 1;
		}
	};
	line(series.out, rateMax, colour('--out'), true);
	line(series.in, rateMax, colour('--in'), true);
	line(series.conns, connMax, colour('--conns'), false, [5, 4]);
}

function push(arr, v) {
	arr.push(v);
	if (arr.length > SAMPLES)
		arr.shift();
}

async function poll() {
	try {
		const res = await fetch('/stats', { cache: 'no-store' });
		const s = await res.json();
		const t = performance.now();
		if (prev && s.epoch === prev.epoch) {
			const dt = (t - prev.t) / 1000;
			push(series.in, Math.max(0, (s.messages_in - prev.in) / dt));
			push(series.out, Math.max(0, (s.messages_out - prev.out) / dt));
			push(series.conns, s.connections);
			$('fig-in').textContent = fmt(series.in.at(-1));
			$('fig-out').textContent = fmt(series.out.at(-1));
		}
		prev = { t, in: s.messages_in, out: s.messages_out, epoch: s.epoch };
		$('fig-conns').textContent = String(s.connections);
		$('fig-topics').textContent = String(s.topics);
		$('fig-uptime').textContent = duration(s.uptime_s);
		draw();
	} catch (e) {
		prev = null; // broker away: the next sample starts afresh
	}
}

window.addEventListener('resize', draw);
draw();
poll();
setInterval(poll, 1000);
