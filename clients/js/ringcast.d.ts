// Type declarations for ringcast.js, the ringcast pub/sub client.

/** Any value JSON can carry. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What a handler gets with each message. */
export interface MessageMeta {
	topic: string;
	/** The topic's sequence number, 1, 2, 3, … within one broker epoch. */
	seq: number;
	/** The broker epoch the seq belongs to. */
	epoch: string;
}

/**
 * Text payloads that are JSON arrive parsed, other text as a string,
 * binary payloads (published over HTTP or /pub) as a Uint8Array.
 */
export type MessageData = Json | Uint8Array;

export type MessageHandler = (data: MessageData, meta: MessageMeta) => void;

/** The constructor of a WHATWG-style WebSocket (browsers, Node 22+, `ws`). */
export interface WebSocketConstructor {
	new (url: string): {
		send(data: string): void;
		close(code?: number, reason?: string): void;
		onmessage: ((ev: { data: unknown }) => void) | null;
		onerror: ((ev: unknown) => void) | null;
		onclose: ((ev: { code: number; reason: string }) => void) | null;
	};
}

export interface RingcastOptions {
	/** WebSocket constructor; default globalThis.WebSocket. */
	WebSocket?: WebSocketConstructor;
	/** ms before the first reconnect attempt (default 250). */
	minDelay?: number;
	/** ms, the reconnect backoff's ceiling (default 10000). */
	maxDelay?: number;
	/** Publishes held while disconnected (default 1000); 0 rejects them. */
	maxQueue?: number;
	/** ms between keep-alive pings (default 25000); 0 = none. */
	pingInterval?: number;
	/** ms to wait for a ping's ack before dropping the connection (default 10000). */
	pingTimeout?: number;
	/** ms to wait for the broker's welcome before trying again (default 10000). */
	connectTimeout?: number;
	/** Reconnect after a lost connection (default true). */
	reconnect?: boolean;
	/** Returns a connection token (JWT) for the broker's access control, or
	 * null to connect anonymously.  Called before every connect and
	 * reconnect, and refreshMargin ms before the token's exp to refresh it
	 * on the open connection (default: none). */
	getToken?: () => string | null | Promise<string | null>;
	/** ms before a token's exp to refresh it, at most half its remaining
	 * life (default 30000). */
	refreshMargin?: number;
	/** 'auto' (default): WebSocket, falling back to Server-Sent Events after
	 * sseAfter failed connects in a row; 'websocket' or 'sse' only. */
	transport?: 'auto' | 'websocket' | 'sse';
	/** Failed WebSocket connects in a row before 'auto' uses SSE (default 3). */
	sseAfter?: number;
	/** EventSource constructor; default globalThis.EventSource. */
	EventSource?: new (url: string) => {
		readyState: number;
		close(): void;
		onerror: ((ev: unknown) => void) | null;
		addEventListener(type: string, fn: (ev: { data: string }) => void): void;
	};
	/** Extra headers for publishing over SSE (POST /publish), e.g.
	 * { Authorization: 'Bearer API-KEY' } when access control is on. */
	publishHeaders?: Record<string, string>;
	/** Client info (at most 128 bytes of UTF-8) others see in presence and
	 * join/leave events (sent as ?info= on connect; default none). */
	info?: string | null;
	/** After a reconnect, resume each pattern through exact subscriptions
	 * (with from) to the topics it delivered, up to 1000 (default true). */
	resumePatterns?: boolean;
}

export interface OpenEvent {
	epoch: string;
	version: string;
	/** false for the first connection, true for every later one. */
	reconnected: boolean;
	/** The transport of this connection. */
	transport: 'websocket' | 'sse';
}

export interface CloseEvent {
	code: number;
	reason: string;
	/** Whether this socket had got the broker's welcome (false: a failed attempt). */
	wasOpen: boolean;
	willReconnect: boolean;
	/** ms until the next attempt, when willReconnect. */
	delay?: number | null;
}

export interface GapEvent {
	topic?: string;
	/** The first lost seq. */
	from?: number;
	/** The last lost seq (inclusive). */
	to?: number;
	/** A pattern subscription's drops: the pattern and how many were dropped
	 * (instead of topic, from and to). */
	pattern?: string;
	dropped?: number;
}

/** join / leave: a connection subscribed to, or left, a topic whose
 *  namespace has join_leave = on. */
export interface PresenceEvent {
	topic: string;
	/** Connection id, unique within one broker process. */
	conn: number;
	/** The token's user (sub claim), when it had a token. */
	user?: string;
	/** The other client's info option. */
	info?: string;
}

export interface PresenceClient {
	conn: number;
	user?: string;
	info?: string;
}

export interface ResetEvent {
	epoch: string;
	previousEpoch: string;
	/** The topics whose numbering restarted (all subscribed ones on a new epoch). */
	topics: string[];
}

export interface RingcastEvents {
	open: OpenEvent;
	close: CloseEvent;
	error: RingcastError | Error;
	gap: GapEvent;
	reset: ResetEvent;
	join: PresenceEvent;
	leave: PresenceEvent;
}

/** An error with the broker's code ('bad_topic', 'rate_limited', …) or the client's
 *  ('queue_full', 'connection_lost', 'closed', 'socket', 'bad_json'). */
export class RingcastError extends Error {
	code: string;
	reason?: string;
	topic?: string;
	constructor(code: string, message?: string, extra?: object);
}

export class Subscription {
	readonly topic: string;
	/** false after unsubscribe(), close(), or the broker refusing the topic. */
	active: boolean;
	/** Settles with the first ack, or rejects with the broker's err (seq is
	 *  undefined for a pattern: it has none of its own). */
	readonly ready: Promise<{ seq: number; epoch: string }>;
	unsubscribe(): void;
}

export class Ringcast {
	/** url: ws://host:port/ws; in a page it defaults to this page's host. */
	constructor(url?: string | URL, options?: RingcastOptions);
	constructor(options: RingcastOptions);
	readonly url: string;
	readonly options: Required<Omit<RingcastOptions, 'WebSocket'>> & { WebSocket?: WebSocketConstructor };
	/** The broker's epoch, from the last welcome (null before the first). */
	readonly epoch: string | null;
	/** Between the welcome and the connection's end. */
	readonly connected: boolean;
	/** After close(). */
	readonly closed: boolean;
	/** The transport in use, or tried next: 'websocket' or 'sse'. */
	readonly transport: 'websocket' | 'sse';
	on<K extends keyof RingcastEvents>(event: K, fn: (ev: RingcastEvents[K]) => void): () => void;
	off<K extends keyof RingcastEvents>(event: K, fn: (ev: RingcastEvents[K]) => void): void;
	/** topic may be a pattern ('news.*' one token, 'news.>' one or more):
	 *  meta.topic is the message's own topic; across a reconnect the topics
	 *  it delivered resume (resumePatterns), others come live. */
	subscribe(topic: string, handler: MessageHandler): Subscription;
	/** Who is subscribed (namespace with presence = on); at most 100
	 *  clients, truncated says there are more. */
	presence(topic: string): Promise<{ topic: string; total: number; clients: PresenceClient[]; truncated: boolean }>;
	/** Subscription and distinct user counts. */
	presenceStats(topic: string): Promise<{ topic: string; clients: number; users: number }>;
	/** Resolves with the seq the broker assigned. */
	publish(topic: string, data: Json): Promise<{ seq: number; epoch: string }>;
	close(): void;
}

export default Ringcast;
