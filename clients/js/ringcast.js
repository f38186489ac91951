// ringcast.js: the ringcast pub/sub client for browsers and Node.js.
//
// One ES module, no build step, no dependency. It speaks the broker's JSON
// mode (GET /ws, see broker/PROTOCOL.md): many topics over one WebSocket,
// reconnecting by itself and resuming every topic where it left off.
//
//   import { Ringcast } from './ringcast.js';
//   const rc = new Ringcast('ws://127.0.0.1:8080'); // the path defaults to /ws
//   const sub = rc.subscribe('news', (data, meta) => console.log(meta.seq, data));
//   await rc.publish('news', { hello: 'world' });
//   sub.unsubscribe();
//   rc.close();
//
// In Node.js without a global WebSocket (before Node 22), inject one:
//   import WebSocket from 'ws';
//   const rc = new Ringcast(url, { WebSocket });
//
// With access control, pass getToken: an async function returning a fresh
// connection token (JWT) from your backend. It is called before every
// connect and reconnect (the token goes in {"op":"auth"}, never in the
// URL) and again refreshMargin ms before the token's exp
// ({"op":"refresh"}), so the broker never closes the connection with 4001.
//   const rc = new Ringcast(url, { getToken: () => fetch('/token').then((r) => r.text()) });
//
// Where WebSocket does not get through (a proxy that refuses upgrades), the
// client falls back to Server-Sent Events after sseAfter failed connects
// (or from the start with transport: 'sse'): it subscribes over
// GET /events/<topics> with an EventSource, resumes by the stream's ids,
// and publishes with POST /publish/<topic> (publishHeaders are sent with
// it: with access control that endpoint needs an API key).  rc.transport
// says which one is in use ('websocket' or 'sse').

const DEFAULTS = {
	minDelay: 250, // ms before the first reconnect attempt
	maxDelay: 10000, // ms, the backoff's ceiling
	maxQueue: 1000, // publishes held while disconnected; 0 = reject them
	pingInterval: 25000, // ms between keep-alive pings; 0 = none
	pingTimeout: 10000, // ms to wait for a ping's ack before reconnecting
	connectTimeout: 10000, // ms to get the welcome (and the auth ack) before trying again
	reconnect: true,
	getToken: null, // async () => JWT string (or null: anonymous), see above
	refreshMargin: 30000, // ms before exp to refresh (at most half the token's life)
	transport: 'auto', // 'auto' (WebSocket, SSE after sseAfter failures), 'websocket' or 'sse'
	sseAfter: 3, // failed WebSocket connects in a row before 'auto' falls back to SSE
	publishHeaders: null, // extra HTTP headers for publishing over SSE, e.g. an API key
	info: null, // a string (at most 128 bytes) shown to others in presence and join/leave
	resumePatterns: true, // resume patterns through their topics' exact subscriptions
};

const MAX_SEEN = 1000; // topics a pattern remembers for its resume

const EVENTS = ['open', 'close', 'error', 'gap', 'reset', 'join', 'leave'];

// Patterns (broker/PROTOCOL.md): '.'-separated tokens; a token that is
// exactly '*' matches one token, a last '>' one or more.
function isPattern(topic) {
	return topic.split('.').some((tok) => tok === '*' || tok === '>');
}

function patternMatches(pattern, topic) {
	const p = pattern.split('.'), s = topic.split('.');
	for (let i = 0; i < p.length; i++) {
		if (p[i] === '>' && i === p.length - 1)
			return s.length > i;
		if (i >= s.length || (p[i] !== '*' && p[i] !== s[i]))
			return false;
	}
	return p.length === s.length;
}

// An Error with the broker's code (err.code), e.g. 'bad_topic'.
export class RingcastError extends Error {
	constructor(code, message, extra) {
		super(message || code);
		this.name = 'RingcastError';
		this.code = code;
		if (extra)
			Object.assign(this, extra);
	}
}

// Hands an exception thrown by user code to the host's error reporting
// without breaking the loop that called it (the next message still arrives).
function report(e) {
	if (typeof globalThis.reportError === 'function')
		globalThis.reportError(e);
	else
		setTimeout(() => { throw e; }, 0);
}

function decodeBase64(s) {
	if (typeof atob === 'function') {
		const bin = atob(s);
		const out = new Uint8Array(bin.length);
		for (let i = 0; i < bin.length; i++)
			out[i] = bin.charCodeAt(i);
		return out;
	}
	const B = globalThis.Buffer; // very old Node.js without atob
	const buf = B.from(s, 'base64');
	return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

// 'ws://host:port' with no path means the broker's JSON endpoint, /ws (the
// broker's / is the demo page: a WebSocket there gets 404 and would retry
// for ever).  Any other path is kept as given.
function withPath(url) {
	const s = String(url);
	const m = /^(wss?:\/\/[^/?#]+)\/?$/i.exec(s);
	return m ? `${m[1]}/ws` : s;
}

// Seconds since the epoch of a JWT's exp claim, or null (not a JWT, no
// exp). The client only schedules its refresh with it; the broker verifies.
function tokenExp(token) {
	try {
		const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
		const json = typeof atob === 'function' ? atob(part + '='.repeat((4 - part.length % 4) % 4))
			: globalThis.Buffer.from(part, 'base64').toString('latin1');
		const exp = JSON.parse(json).exp;
		return typeof exp === 'number' ? exp : null;
	} catch (e) {
		return null;
	}
}

function defaultUrl() {
	const loc = globalThis.location;
	if (!loc || !loc.host)
		throw new TypeError('Ringcast: a URL is required outside a browser page');
	return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
}

// The URL with ?info= (presence) added.
function withInfo(url, info) {
	const u = new URL(url);
	u.searchParams.set('info', info);
	return u.toString();
}

// A subscription handle: returned by Ringcast#subscribe.
class Subscription {
	constructor(rc, topic, handler) {
		this.topic = topic;
		this._rc = rc;
		this._handler = handler;
		this.active = true;
		// Settles with the first ack ({seq, epoch}) or the broker's err.
		this.ready = new Promise((resolve, reject) => {
			this._resolve = resolve;
			this._reject = reject;
		});
		this.ready.catch(() => {}); // an unobserved failure also goes to 'error'
	}

	// Stops this handler; the topic is unsubscribed when it has no handler left.
	unsubscribe() {
		if (!this.active)
			return;
		this.active = false;
		this._rc._dropHandler(this);
	}
}

// The client: one logical connection that survives reconnects.
export class Ringcast {
	constructor(url, options = {}) {
		if (url && typeof url === 'object' && !(url instanceof URL)) {
			options = url;
			url = undefined;
		}
		this.url = url ? withPath(url) : defaultUrl();
		this.options = { ...DEFAULTS, ...options };
		this._WS = this.options.WebSocket || globalThis.WebSocket;
		this._ES = this.options.EventSource || globalThis.EventSource;
		// 'websocket' or 'sse': the transport of the current (or next) connection.
		this.transport = this.options.transport === 'sse' ? 'sse' : 'websocket';
		if (this.transport === 'sse' && typeof this._ES !== 'function')
			throw new TypeError('Ringcast: no EventSource; pass options.EventSource');
		if (this.transport === 'websocket' && typeof this._WS !== 'function')
			throw new TypeError('Ringcast: no WebSocket; pass options.WebSocket (e.g. the ws package)');
		this._wsFailures = 0; // WebSocket connects in a row that never got a welcome
		this.epoch = null; // the broker's epoch, from the last welcome
		this.connected = false; // true between welcome and disconnect
		this.closed = false; // true after close()
		this._listeners = new Map(EVENTS.map((e) => [e, new Set()]));
		this._topics = new Map(); // topic -> {subs:Set, lastSeq, acked, subId}
		this._pending = new Map(); // id -> {resolve, reject, kind, topic}
		this._queue = []; // {cmd, resolve, reject} waiting for a connection
		this._nextId = 1;
		this._attempt = 0; // failed attempts since the last welcome
		this._ws = null;
		this._timer = null; // reconnect, connect-timeout or ping timer
		this._pingTimer = null;
		this._refreshTimer = null;
		this._token = null; // the token of the current connection
		this._connect();
	}

	// Adds a listener for 'open', 'close', 'error', 'gap' or 'reset';
	// returns a function that removes it.
	on(event, fn) {
		const set = this._listeners.get(event);
		if (!set)
			throw new TypeError(`Ringcast: unknown event '${event}' (${EVENTS.join(', ')})`);
		set.add(fn);
		return () => set.delete(fn);
	}

	// Removes a listener added with on().
	off(event, fn) {
		const set = this._listeners.get(event);
		if (set)
			set.delete(fn);
	}

	// Calls fn(...data) with every message of the topic from now on, in seq
	// order, across reconnects. Returns a Subscription.  The topic may be a
	// pattern ('news.*', 'news.>'): every message of the topics it matches
	// (meta.topic says which), each once, live only (no resume after a
	// reconnect: a pattern has no seq of its own).
	subscribe(topic, handler) {
		if (typeof topic !== 'string' || topic.length === 0)
			throw new TypeError('Ringcast: topic must be a non-empty string');
		if (typeof handler !== 'function')
			throw new TypeError('Ringcast: handler must be a function');
		if (this.closed)
			throw new RingcastError('closed', 'Ringcast: client is closed');
		const sub = new Subscription(this, topic, handler);
		let t = this._topics.get(topic);
		if (t) {
			t.subs.add(sub);
			if (t.acked)
				sub._resolve({ seq: t.lastSeq, epoch: this.epoch });
			return sub;
		}
		t = { subs: new Set([sub]), lastSeq: null, acked: false, subId: null,
			pattern: isPattern(topic), seen: null, via: null };
		this._topics.set(topic, t);
		if (this.connected && this.transport === 'sse')
			this._sseReopen();
		else if (this.connected)
			this._sendSub(topic, t);
		return sub;
	}

	// Publishes a JSON value to the topic. Resolves with {seq, epoch} once
	// the broker acks it; rejects with a RingcastError (err.code) otherwise.
	// While disconnected, up to maxQueue publishes wait for the connection.
	publish(topic, data) {
		if (typeof topic !== 'string' || topic.length === 0)
			return Promise.reject(new TypeError('Ringcast: topic must be a non-empty string'));
		if (data === undefined || typeof data === 'function' || typeof data === 'symbol')
			return Promise.reject(new TypeError('Ringcast: data must be a JSON value'));
		if (data instanceof ArrayBuffer || ArrayBuffer.isView(data))
			return Promise.reject(new TypeError(
				'Ringcast: JSON mode carries no binary data; POST it to /publish/<topic>'));
		if (this.closed)
			return Promise.reject(new RingcastError('closed', 'Ringcast: client is closed'));
		return new Promise((resolve, reject) => {
			const cmd = { op: 'pub', topic, data };
			if (this.connected && this.transport === 'sse')
				return this._ssePublish(cmd, resolve, reject);
			if (this.connected)
				return this._request(cmd, { kind: 'pub', topic, resolve, reject });
			if (this._queue.length >= this.options.maxQueue)
				return reject(new RingcastError('queue_full',
					`Ringcast: not connected and ${this._queue.length} publishes already queued`));
			this._queue.push({ cmd, resolve, reject });
		});
	}

	// Who is subscribed to the topic (its namespace needs presence = on):
	// resolves with {total, clients: [{conn, user?, info?}], truncated}
	// (at most 100 clients; GET /presence/<topic> pages through all).
	presence(topic) {
		return this._ask({ op: 'presence', topic });
	}

	// Resolves with {clients, users}: how many subscriptions and users.
	presenceStats(topic) {
		return this._ask({ op: 'presence_stats', topic });
	}

	_ask(cmd) {
		if (this.closed)
			return Promise.reject(new RingcastError('closed', 'Ringcast: client is closed'));
		if (!this.connected)
			return Promise.reject(new RingcastError('not_connected', 'Ringcast: not connected'));
		return new Promise((resolve, reject) => this._request(cmd, { kind: 'ask', resolve, reject }));
	}

	// Closes the connection for good: no reconnect; queued and unacked
	// publishes are rejected with code 'closed'.
	close() {
		if (this.closed)
			return;
		this.closed = true;
		clearTimeout(this._timer);
		clearTimeout(this._refreshTimer);
		this._stopPing();
		const ws = this._ws;
		this._ws = null;
		const wasConnected = this.connected;
		this.connected = false;
		this._failAll('closed', 'Ringcast: client closed');
		for (const t of this._topics.values())
			for (const s of t.subs)
				s.active = false;
		this._topics.clear();
		if (ws) {
			this._detach(ws);
			try {
				ws.close(1000, 'bye');
			} catch (e) { /* already closing */ }
		}
		this._emit('close', { code: 1000, reason: 'closed by client', wasOpen: wasConnected, willReconnect: false });
	}

	// --- internals ---

	_emit(event, arg) {
		for (const fn of [...this._listeners.get(event)]) {
			try {
				fn(arg);
			} catch (e) {
				report(e);
			}
		}
	}

	// The token of the next connection (getToken): false when that failed
	// (reported, another attempt scheduled) or the client was closed meanwhile.
	async _takeToken() {
		if (!this.options.getToken)
			return true;
		try {
			this._token = await this.options.getToken();
		} catch (e) {
			this._emit('error', new RingcastError('token',
				`Ringcast: getToken failed: ${e && e.message ? e.message : e}`));
			this._scheduleReconnect();
			return false;
		}
		return !this.closed;
	}

	async _connect() {
		this._timer = null;
		this._token = null;
		if (!(await this._takeToken()))
			return;
		if (this.transport === 'sse')
			return this._sseConnect();
		let ws;
		try {
			ws = new this._WS(this.options.info ? withInfo(this.url, this.options.info) : this.url);
		} catch (e) {
			this._emit('error', e);
			this._scheduleReconnect();
			return;
		}
		this._ws = ws;
		ws.onmessage = (ev) => this._onMessage(ev.data);
		ws.onerror = (ev) => {
			// Browsers tell nothing more (ws in Node.js does); close follows.
			const why = ev && ev.message ? `: ${ev.message}` : '';
			this._emit('error', new RingcastError('socket', `Ringcast: WebSocket error on ${this.url}${why}`));
		};
		ws.onclose = (ev) => this._onClose(ws, ev.code, ev.reason);
		// No welcome in time (a proxy that accepts and stalls): try again.
		this._timer = setTimeout(() => {
			if (this._ws === ws && !this.connected)
				this._abort(ws, 'no welcome');
		}, this.options.connectTimeout);
	}

	_detach(ws) {
		ws.onmessage = ws.onerror = ws.onclose = null;
		// ws (Node) emits 'error' events that would otherwise be unhandled.
		if (typeof ws.on === 'function')
			ws.on('error', () => {});
	}

	// Drops a connection that stopped working and reconnects.
	_abort(ws, why) {
		this._detach(ws);
		try {
			ws.close(4000, why);
		} catch (e) { /* not open yet */ }
		this._onClose(ws, 1006, why);
	}

	_onClose(ws, code, reason) {
		if (ws !== this._ws)
			return;
		this._ws = null;
		clearTimeout(this._timer);
		clearTimeout(this._refreshTimer);
		this._stopPing();
		const wasConnected = this.connected;
		this.connected = false;
		this._sseFallback(wasConnected);
		// An unacked publish may or may not have reached the broker.
		for (const [id, p] of this._pending) {
			this._pending.delete(id);
			if (p.kind === 'pub')
				p.reject(new RingcastError('connection_lost',
					'Ringcast: connection lost before the ack; the message may or may not be published'));
		}
		for (const t of this._topics.values()) {
			t.acked = false;
			t.subId = null;
		}
		if (this.closed)
			return;
		const delay = this.options.reconnect ? this._nextDelay() : null;
		this._emit('close', { code, reason: String(reason || ''), wasOpen: wasConnected,
			willReconnect: delay !== null, delay });
		if (delay === null) {
			this.closed = true;
			this._failAll('closed', 'Ringcast: connection closed');
			return;
		}
		this._timer = setTimeout(() => this._connect(), delay);
	}

	// Exponential backoff with "equal jitter": half the step is fixed, half
	// random, so a broker restart does not see every client at once.
	_nextDelay() {
		const { minDelay, maxDelay } = this.options;
		const step = Math.min(maxDelay, minDelay * 2 ** Math.min(this._attempt, 30));
		this._attempt++;
		return Math.round(step / 2 + Math.random() * step / 2);
	}

	_scheduleReconnect() {
		if (this.closed || !this.options.reconnect)
			return;
		this._timer = setTimeout(() => this._connect(), this._nextDelay());
	}

	_failAll(code, message) {
		for (const [id, p] of this._pending) {
			this._pending.delete(id);
			p.reject(new RingcastError(code, message));
		}
		for (const q of this._queue.splice(0))
			q.reject(new RingcastError(code, message));
	}

	_send(cmd) {
		this._ws.send(JSON.stringify(cmd));
	}

	_request(cmd, pending) {
		const id = this._nextId++;
		this._pending.set(id, pending);
		this._send({ ...cmd, id });
		return id;
	}

	// A pattern resumes as exact subscriptions with from for the topics it
	// delivered before (at most MAX_SEEN of them), routed to its handlers,
	// then the pattern itself: topics that appeared meanwhile come live.
	_resumePattern(pattern, t) {
		for (const [topic, last] of t.seen || []) {
			if (this._topics.has(topic))
				continue; // subscribed by name, or resumed already
			const e = { subs: t.subs, lastSeq: last, acked: false, subId: null,
				pattern: false, seen: null, via: pattern };
			this._topics.set(topic, e);
			this._sendSub(topic, e);
		}
		if (t.seen)
			t.seen.clear();
		this._sendSub(pattern, t);
	}

	_sendSub(topic, t) {
		const cmd = { op: 'sub', topic };
		// Resume only within one epoch: seq numbers restart with the broker.
		if (t.lastSeq !== null && !t.pattern)
			cmd.from = t.lastSeq + 1;
		t.subId = this._request(cmd, { kind: 'sub', topic, from: cmd.from });
	}

	_onMessage(raw) {
		if (typeof raw !== 'string')
			raw = new TextDecoder().decode(raw);
		let m;
		try {
			m = JSON.parse(raw);
		} catch (e) {
			this._emit('error', new RingcastError('bad_json', 'Ringcast: broker sent invalid JSON'));
			return;
		}
		switch (m.op) {
		case 'welcome': return this._onWelcome(m);
		case 'msg': return this._onMsg(m);
		case 'ack': return this._onAck(m);
		case 'err': return this._onErr(m);
		case 'gap': return this._onGap(m);
		case 'reset': return this._onReset(m);
		case 'join':
		case 'leave':
			return this._emit(m.op, { topic: m.topic, conn: m.conn, user: m.user, info: m.info });
		case 'presence':
		case 'presence_stats': {
			const p = this._pending.get(m.id);
			if (!p || p.kind !== 'ask')
				return;
			this._pending.delete(m.id);
			const { op, id, ...answer } = m;
			return p.resolve(answer);
		}
		default:
			return; // newer brokers may add messages
		}
	}

	// With a token, the welcome is answered with auth first; the
	// connection counts as open once the broker acked it.
	_onWelcome(m) {
		if (typeof this._token === 'string' && this._token) {
			this._request({ op: 'auth', token: this._token }, { kind: 'auth', welcome: m });
			return;
		}
		this._welcomed(m);
	}

	_welcomed(m) {
		const ws = this._ws;
		clearTimeout(this._timer);
		const previous = this.epoch;
		const restarted = previous !== null && m.epoch !== previous;
		this.epoch = m.epoch;
		this.connected = true;
		this._attempt = 0;
		const reconnected = previous !== null;
		if (restarted) {
			// Old seq numbers mean nothing now: subscribe afresh.
			for (const t of this._topics.values()) {
				t.lastSeq = null;
				if (t.seen)
					t.seen.clear();
			}
		}
		this._emit('open', { epoch: m.epoch, version: m.version, reconnected, transport: 'websocket' });
		if (restarted)
			this._emit('reset', { epoch: m.epoch, previousEpoch: previous, topics: [...this._topics.keys()] });
		if (this._ws !== ws || !this.connected)
			return; // a listener closed us
		// Exact topics first: a pattern's resume (its topics' exact subs)
		// must be in place before the pattern goes live (PROTOCOL.md).
		for (const [topic, t] of [...this._topics])
			if (!t.pattern)
				this._sendSub(topic, t);
		for (const [topic, t] of [...this._topics])
			if (t.pattern)
				this._resumePattern(topic, t);
		for (const q of this._queue.splice(0))
			this._request(q.cmd, { kind: 'pub', topic: q.cmd.topic, resolve: q.resolve, reject: q.reject });
		this._startPing();
		this._scheduleRefresh(ws);
	}

	// Asks getToken for a new token refreshMargin before exp (at most half
	// the remaining life, at least 1 s from now) and sends it as refresh.
	_scheduleRefresh(ws, retry) {
		clearTimeout(this._refreshTimer);
		const exp = this._token && this.options.getToken ? tokenExp(this._token) : null;
		if (exp === null)
			return;
		const left = exp * 1000 - Date.now();
		const delay = retry ? Math.min(5000, Math.max(1000, left / 2))
			: Math.max(1000, left - Math.min(this.options.refreshMargin, left / 2));
		this._refreshTimer = setTimeout(() => this._refresh(ws), delay);
	}

	async _refresh(ws) {
		let token;
		try {
			token = await this.options.getToken();
		} catch (e) {
			this._emit('error', new RingcastError('token',
				`Ringcast: getToken failed: ${e && e.message ? e.message : e}`));
		}
		if (this._ws !== ws || !this.connected)
			return;
		if (typeof token !== 'string' || !token)
			return this._scheduleRefresh(ws, true);
		this._request({ op: 'refresh', token }, { kind: 'refresh', ws, token });
	}

	// The subscription a message belongs to: its topic's, else the first
	// acked pattern that matches (the broker sends it once per connection).
	_topicFor(name) {
		const t = this._topics.get(name);
		if (t && t.acked)
			return t;
		for (const [pattern, p] of this._topics)
			if (p.pattern && p.acked && patternMatches(pattern, name))
				return p;
		return null;
	}

	_onMsg(m) {
		const t = this._topicFor(m.topic);
		// Before the ack the stream may still carry a dropped subscription.
		if (!t)
			return;
		if (!t.pattern && t.lastSeq !== null && m.seq <= t.lastSeq)
			return; // already delivered
		if (!t.pattern)
			t.lastSeq = m.seq;
		else if (this.options.resumePatterns && (t.seen || (t.seen = new Map())).size < MAX_SEEN)
			t.seen.set(m.topic, m.seq);
		const data = m.enc === 'base64' ? decodeBase64(m.data) : m.data;
		const meta = { topic: m.topic, seq: m.seq, epoch: this.epoch };
		for (const s of [...t.subs]) {
			if (!s.active)
				continue;
			try {
				s._handler(data, meta);
			} catch (e) {
				report(e);
			}
		}
	}

	_onGap(m) {
		const t = this._topics.get(m.topic);
		// Those numbers are gone for good: a later resume starts after them.
		if (t && t.acked && t.lastSeq !== null && m.to > t.lastSeq)
			t.lastSeq = m.to;
		if (m.pattern !== undefined) // a pattern's drops: a count
			return this._emit('gap', { pattern: m.pattern, dropped: m.dropped });
		this._emit('gap', { topic: m.topic, from: m.from, to: m.to });
	}

	// The broker cannot vouch for the topic's numbers up to m.seq (it forgot
	// them): what we had may be gone; go on after m.seq.
	_onReset(m) {
		const t = this._topics.get(m.topic);
		if (t && t.acked)
			t.lastSeq = m.seq;
		this._emit('reset', { epoch: this.epoch, previousEpoch: this.epoch, topics: [m.topic] });
	}

	_onAck(m) {
		const p = this._pending.get(m.id);
		if (!p)
			return;
		this._pending.delete(m.id);
		if (p.kind === 'pub')
			return p.resolve({ seq: m.seq, epoch: m.epoch });
		if (p.kind === 'ping')
			return clearTimeout(p.timer);
		if (p.kind === 'auth')
			return this._welcomed(p.welcome);
		if (p.kind === 'refresh') {
			this._token = p.token;
			return this._scheduleRefresh(p.ws);
		}
		const t = this._topics.get(p.topic);
		if (!t || t.subId !== m.id)
			return; // unsubscribed (or subscribed again) meanwhile
		t.acked = true;
		if (t.pattern) {
			// no seq of its own
		} else if (t.lastSeq === null) {
			t.lastSeq = m.seq;
		} else if (m.seq < t.lastSeq) {
			// Same epoch but the topic's numbering went back: it vanished
			// (no subscriber, history expired) and was created anew.
			t.lastSeq = m.seq;
			this._emit('reset', { epoch: this.epoch, previousEpoch: this.epoch, topics: [p.topic] });
		}
		for (const s of t.subs)
			s._resolve({ seq: m.seq, epoch: m.epoch });
	}

	_onErr(m) {
		const err = new RingcastError(m.code, `Ringcast: ${m.code}: ${m.reason || ''}`,
			{ reason: m.reason });
		const p = m.id !== undefined ? this._pending.get(m.id) : undefined;
		if (p)
			this._pending.delete(m.id);
		if (p && (p.kind === 'pub' || p.kind === 'ask'))
			return p.reject(err);
		if (p && p.kind === 'auth') {
			// The broker refused the token: try again with a new one.
			this._emit('error', err);
			return this._ws && this._abort(this._ws, 'token refused');
		}
		if (p && p.kind === 'refresh')
			this._scheduleRefresh(p.ws, true);
		if (p && p.kind === 'sub') {
			err.topic = p.topic;
			const t = this._topics.get(p.topic);
			if (t && t.subId === m.id && t.via) {
				// A pattern's resume of one topic failed: the pattern goes on.
				this._topics.delete(p.topic);
			} else if (t && t.subId === m.id) {
				this._topics.delete(p.topic);
				for (const s of t.subs) {
					s.active = false;
					s._reject(err);
				}
			}
		}
		this._emit('error', err);
	}

	_dropHandler(sub) {
		const t = this._topics.get(sub.topic);
		if (!t || !t.subs.delete(sub) || t.subs.size > 0)
			return;
		this._topics.delete(sub.topic);
		if (this.connected && this.transport === 'sse')
			this._sseReopen();
		else if (this.connected)
			this._send({ op: 'unsub', topic: sub.topic });
		// The exact subscriptions a pattern's resume made go with it.
		for (const [topic, e] of [...this._topics]) {
			if (e.via !== sub.topic)
				continue;
			this._topics.delete(topic);
			if (this.connected)
				this._send({ op: 'unsub', topic });
		}
	}

	// --- Server-Sent Events (transport 'sse') ---

	// Counts WebSocket connects that never got their welcome; in 'auto'
	// mode sseAfter of them in a row switch to SSE (where EventSource
	// exists). A connection that worked resets the count.
	_sseFallback(wasConnected) {
		if (this.transport !== 'websocket')
			return;
		if (wasConnected) {
			this._wsFailures = 0;
			return;
		}
		if (++this._wsFailures < this.options.sseAfter || this.options.transport !== 'auto' ||
		    typeof this._ES !== 'function')
			return;
		this.transport = 'sse';
		this._attempt = 0;
	}

	// http(s)://host:port of the broker, from the WebSocket URL.
	_httpBase() {
		const u = new URL(this.url);
		return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}`;
	}

	// GET /events/<topics>: with the token, and the position of every
	// topic we have one for (an empty one starts that topic live).
	_sseUrl(topics) {
		const q = new URLSearchParams();
		if (this._token)
			q.set('token', this._token);
		const seqs = topics.map((t) => this._topics.get(t).lastSeq);
		if (this.epoch !== null && seqs.some((n) => n !== null))
			q.set('last_event_id', `${this.epoch}/${seqs.map((n) => (n === null ? '' : n)).join(',')}`);
		const qs = q.toString();
		return `${this._httpBase()}/events/${topics.map(encodeURIComponent).join(',')}${qs ? `?${qs}` : ''}`;
	}

	// Opens the stream (a new one for a new set of topics keeps the token).
	async _sseConnect() {
		await null; // never open inside the constructor, before any listener
		if (this.closed)
			return;
		const topics = [...this._topics.keys()];
		if (topics.length === 0)
			return this._sseOpened(null); // nothing to stream yet
		let es;
		try {
			es = new this._ES(this._sseUrl(topics));
		} catch (e) {
			this._emit('error', e);
			this._scheduleReconnect();
			return;
		}
		this._ws = es;
		es.topics = topics.join('\n'); // a topic never holds a line break
		const on = (type, fn) => es.addEventListener(type, (ev) => {
			if (this._ws !== es)
				return;
			let m;
			try {
				m = JSON.parse(ev.data);
			} catch (e) {
				return this._emit('error', new RingcastError('bad_json', 'Ringcast: broker sent invalid JSON'));
			}
			fn(m);
		});
		on('msg', (m) => this._onMsg(m));
		on('gap', (m) => this._onGap(m));
		on('reset', (m) => this._onReset(m));
		on('welcome', (m) => {
			es.welcomed = true;
			this._sseOpened(m);
		});
		es.onerror = () => this._sseError(es);
		// The stream carries exactly these topics, replay first.
		for (const t of this._topics.values())
			t.acked = true;
		clearTimeout(this._timer);
		this._timer = setTimeout(() => {
			if (this._ws === es && !es.welcomed)
				this._abort(es, 'no welcome');
		}, this.options.connectTimeout);
	}

	// The stream's welcome (w null: no topic, no stream): the topics are
	// subscribed; the first welcome after a disconnect opens the client.
	_sseOpened(w) {
		clearTimeout(this._timer);
		const previous = this.epoch;
		if (w) {
			this.epoch = w.epoch;
			for (const { topic, seq } of w.topics) {
				const t = this._topics.get(topic);
				if (!t)
					continue;
				if (t.lastSeq === null)
					t.lastSeq = seq;
				for (const s of t.subs)
					s._resolve({ seq, epoch: w.epoch });
			}
		}
		// Topics (un)subscribed while the browser was reconnecting it.
		const stale = this._ws && this._ws.topics !== [...this._topics.keys()].join('\n');
		if (!this.connected) {
			this.connected = true;
			this._attempt = 0;
			this._emit('open', { epoch: this.epoch, version: w ? w.version : '',
				reconnected: previous !== null, transport: 'sse' });
			for (const q of this._queue.splice(0))
				this._ssePublish(q.cmd, q.resolve, q.reject);
		}
		if (stale)
			this._sseReopen();
	}

	_sseError(es) {
		if (this._ws !== es)
			return;
		if (es.readyState === 2) { // CLOSED: refused with an HTTP error
			this._emit('error', new RingcastError('socket', `Ringcast: event stream refused by ${this._httpBase()}`));
			return this._onClose(es, 1006, 'event stream refused');
		}
		// The browser reconnects by itself, resuming by Last-Event-ID.
		if (this.connected) {
			this.connected = false;
			this._emit('close', { code: 1006, reason: 'event stream lost', wasOpen: true,
				willReconnect: true, delay: 0 });
		}
	}

	// The topics changed: one new stream (for every change made in this
	// turn) that resumes each topic where it was.
	_sseReopen() {
		if (this._sseReopening)
			return;
		this._sseReopening = true;
		queueMicrotask(() => {
			this._sseReopening = false;
			if (!this.connected || this.transport !== 'sse' || this.closed)
				return;
			const old = this._ws;
			this._ws = null;
			if (old) {
				this._detach(old);
				old.close();
			}
			this._sseConnect();
		});
	}

	_ssePublish(cmd, resolve, reject) {
		const headers = { 'Content-Type': 'application/json', ...(this.options.publishHeaders || {}) };
		fetch(`${this._httpBase()}/publish/${encodeURIComponent(cmd.topic)}`,
			{ method: 'POST', headers, body: JSON.stringify(cmd.data) }).then(async (r) => {
			const body = await r.json().catch(() => ({}));
			if (r.status === 200)
				return resolve({ seq: body.seq, epoch: this.epoch });
			const code = { 401: 'unauthorized', 403: 'forbidden', 413: 'too_big', 429: 'rate_limited',
				503: 'unavailable' }[r.status] || 'http';
			reject(new RingcastError(code, `Ringcast: POST /publish: ${r.status} ${body.error || ''}`,
				{ status: r.status }));
		}, (e) => reject(new RingcastError('connection_lost', `Ringcast: POST /publish failed: ${e.message}`)));
	}

	_startPing() {
		const { pingInterval, pingTimeout } = this.options;
		if (!pingInterval)
			return;
		const ws = this._ws;
		this._pingTimer = setInterval(() => {
			if (this._ws !== ws || !this.connected)
				return;
			const p = { kind: 'ping' };
			p.timer = setTimeout(() => {
				if (this._ws === ws)
					this._abort(ws, 'ping timeout');
			}, pingTimeout);
			this._request({ op: 'ping' }, p);
		}, pingInterval);
	}

	_stopPing() {
		clearInterval(this._pingTimer);
		this._pingTimer = null;
		for (const [id, p] of this._pending) {
			if (p.kind === 'ping') {
				clearTimeout(p.timer);
				this._pending.delete(id);
			}
		}
	}
}

export default Ringcast;
