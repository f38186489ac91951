/* JSON control protocol: the writers of server frames (msg, ack, err, gap,
 * welcome) and their size bounds.  See json.h for the contract; the command
 * parser and validator are in json.c.
 *
 * Every writer goes through a bounded cursor into the caller's buffer, so a
 * frame that does not fit is reported as -ENOSPC and nothing is written past
 * cap. */
#include "proto/json.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "proto/base64.h"

/* A bounded output cursor: once something does not fit, nothing more is
 * written and the result is -ENOSPC. */
struct out {
	char *p;
	size_t cap, len;
	bool full;
};

static void put(struct out *o, const void *s, size_t n)
{
	if (o->full || n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)
#define LIT_LEN(lit) (sizeof(lit) - 1)
#define U64_DIGITS 20

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[U64_DIGITS];
	size_t n = 0;

	do {
		tmp[U64_DIGITS - ++n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, tmp + U64_DIGITS - n, n);
}

static bool needs_escape(uint8_t c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

/* Copies runs that need no escaping in one memcpy each. */
static void put_str(struct out *o, const uint8_t *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, j;

	PUT_LIT(o, "\"");
	while (i < len) {
		for (j = i; j < len && !needs_escape(s[j]); j++)
			;
		put(o, s + i, j - i);
		if (j == len)
			break;
		if (s[j] < 0x20) {
			char e[6] = { '\\', 'u', '0', '0', hex[s[j] >> 4],
				      hex[s[j] & 15] };
			put(o, e, sizeof(e));
		} else {
			char e[2] = { '\\', (char)s[j] };
			put(o, e, sizeof(e));
		}
		i = j + 1;
	}
	PUT_LIT(o, "\"");
}

static void put_cstr(struct out *o, const char *s)
{
	put_str(o, (const uint8_t *)s, strlen(s));
}

static struct out out_init(char *p, size_t cap)
{
	return (struct out){ .p = p, .cap = cap > SSIZE_MAX ? SSIZE_MAX : cap };
}

static ssize_t out_done(const struct out *o)
{
	return o->full ? -ENOSPC : (ssize_t)o->len;
}

static size_t sadd(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Worst case of a quoted string of n bytes: every byte as \u00xx. */
static size_t str_bound(size_t n)
{
	return n > (SIZE_MAX - 2) / 6 ? SIZE_MAX : 2 + 6 * n;
}

/* Exact quoted length; see json.h. */
size_t rc_json_string_len(const void *s, size_t len)
{
	const uint8_t *p = s;
	size_t n = sadd(len, 2);

	for (size_t i = 0; i < len; i++)
		if (needs_escape(p[i]))
			n = sadd(n, p[i] < 0x20 ? 5 : 1);
	return n;
}

/* Quoted, escaped string; see json.h. */
ssize_t rc_json_write_string(char *out, size_t cap, const void *s, size_t len)
{
	struct out o = out_init(out, cap);

	put_str(&o, s, len);
	return out_done(&o);
}

#define MSG_HEAD "{\"op\":\"msg\",\"topic\":"
#define MSG_SEQ ",\"seq\":"
#define MSG_DATA ",\"data\":"
#define MSG_ENC ",\"enc\":\"base64\""

static size_t msg_fixed(enum rc_json_data kind)
{
	size_t n = LIT_LEN(MSG_HEAD) + LIT_LEN(MSG_SEQ) + LIT_LEN(MSG_DATA) + 1;

	return kind == RC_JSON_DATA_BINARY ? n + LIT_LEN(MSG_ENC) + 2 : n;
}

/* Worst-case msg size; see json.h. */
size_t rc_json_msg_bound(size_t topic_len, size_t data_len,
			 enum rc_json_data kind)
{
	size_t n = sadd(msg_fixed(kind) + U64_DIGITS, str_bound(topic_len));

	if (kind == RC_JSON_DATA_JSON)
		return sadd(n, data_len);
	if (kind == RC_JSON_DATA_TEXT)
		return sadd(n, str_bound(data_len));
	return sadd(n, rc_base64_encoded_len(data_len));
}

static size_t u64_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Exact msg size; see json.h. */
size_t rc_json_msg_len(const char *topic, size_t topic_len, uint64_t seq,
		       const void *data, size_t data_len,
		       enum rc_json_data kind)
{
	size_t n = sadd(msg_fixed(kind) + u64_len(seq),
			rc_json_string_len(topic, topic_len));

	if (kind == RC_JSON_DATA_JSON)
		return sadd(n, data_len);
	if (kind == RC_JSON_DATA_TEXT)
		return sadd(n, rc_json_string_len(data, data_len));
	return sadd(n, rc_base64_encoded_len(data_len));
}

/* The msg envelope; see json.h. */
ssize_t rc_json_write_msg(char *out, size_t cap, const char *topic,
			  size_t topic_len, uint64_t seq, const void *data,
			  size_t data_len, enum rc_json_data kind)
{
	struct out o = out_init(out, cap);
	ssize_t n;

	PUT_LIT(&o, MSG_HEAD);
	put_str(&o, (const uint8_t *)topic, topic_len);
	PUT_LIT(&o, MSG_SEQ);
	put_u64(&o, seq);
	PUT_LIT(&o, MSG_DATA);
	if (kind == RC_JSON_DATA_JSON) {
		put(&o, data, data_len);
	} else if (kind == RC_JSON_DATA_TEXT) {
		put_str(&o, data, data_len);
	} else {
		PUT_LIT(&o, "\"");
		n = o.full ? -ENOSPC
			   : rc_base64_encode(o.p + o.len, o.cap - o.len, data,
					      data_len);
		if (n < 0)
			o.full = true;
		else
			o.len += (size_t)n;
		PUT_LIT(&o, "\"" MSG_ENC);
	}
	PUT_LIT(&o, "}");
	return out_done(&o);
}

#define ACK_HEAD "{\"op\":\"ack\",\"id\":"
#define ACK_SEQ ",\"seq\":"
#define ACK_EPOCH ",\"epoch\":"

/* Upper bound of an ack; see json.h. */
size_t rc_json_ack_bound(size_t id_len, size_t epoch_len)
{
	return sadd(sadd(LIT_LEN(ACK_HEAD ACK_SEQ ACK_EPOCH "}") + U64_DIGITS,
			 id_len), str_bound(epoch_len));
}

/* The ack; see json.h. */
ssize_t rc_json_write_ack(char *out, size_t cap, struct rc_span id,
			  bool has_seq, uint64_t seq, const char *epoch)
{
	struct out o = out_init(out, cap);

	if (!id.p || !id.len)
		return -EINVAL;
	PUT_LIT(&o, ACK_HEAD);
	put(&o, id.p, id.len);
	if (has_seq) {
		PUT_LIT(&o, ACK_SEQ);
		put_u64(&o, seq);
	}
	if (epoch) {
		PUT_LIT(&o, ACK_EPOCH);
		put_cstr(&o, epoch);
	}
	PUT_LIT(&o, "}");
	return out_done(&o);
}

#define ERR_HEAD "{\"op\":\"err\""
#define ERR_ID ",\"id\":"
#define ERR_CODE ",\"code\":"
#define ERR_REASON ",\"reason\":"

/* Upper bound of an err; see json.h. */
size_t rc_json_err_bound(size_t id_len, size_t code_len, size_t reason_len)
{
	size_t n = LIT_LEN(ERR_HEAD ERR_ID ERR_CODE ERR_REASON "}");

	return sadd(sadd(sadd(n, id_len), str_bound(code_len)),
		    str_bound(reason_len));
}

/* The err; see json.h. */
ssize_t rc_json_write_err(char *out, size_t cap, struct rc_span id,
			  const char *code, const char *reason)
{
	struct out o = out_init(out, cap);

	PUT_LIT(&o, ERR_HEAD);
	if (id.p) {
		PUT_LIT(&o, ERR_ID);
		put(&o, id.p, id.len);
	}
	PUT_LIT(&o, ERR_CODE);
	put_cstr(&o, code);
	if (reason) {
		PUT_LIT(&o, ERR_REASON);
		put_cstr(&o, reason);
	}
	PUT_LIT(&o, "}");
	return out_done(&o);
}

#define GAP_HEAD "{\"op\":\"gap\",\"topic\":"
#define GAP_FROM ",\"from\":"
#define GAP_TO ",\"to\":"

/* Upper bound of a gap; see json.h. */
size_t rc_json_gap_bound(size_t topic_len)
{
	return sadd(LIT_LEN(GAP_HEAD GAP_FROM GAP_TO "}") + 2 * U64_DIGITS,
		    str_bound(topic_len));
}

/* The gap; see json.h. */
ssize_t rc_json_write_gap(char *out, size_t cap, const char *topic,
			  size_t topic_len, uint64_t from, uint64_t to)
{
	struct out o = out_init(out, cap);

	PUT_LIT(&o, GAP_HEAD);
	put_str(&o, (const uint8_t *)topic, topic_len);
	PUT_LIT(&o, GAP_FROM);
	put_u64(&o, from);
	PUT_LIT(&o, GAP_TO);
	put_u64(&o, to);
	PUT_LIT(&o, "}");
	return out_done(&o);
}

#define WELCOME_HEAD "{\"op\":\"welcome\",\"version\":"
#define WELCOME_EPOCH ",\"epoch\":"

/* Upper bound of a welcome; see json.h. */
size_t rc_json_welcome_bound(size_t version_len, size_t epoch_len)
{
	return sadd(sadd(LIT_LEN(WELCOME_HEAD WELCOME_EPOCH "}"),
			 str_bound(version_len)), str_bound(epoch_len));
}

/* The welcome; see json.h. */
ssize_t rc_json_write_welcome(char *out, size_t cap, const char *version,
			      const char *epoch)
{
	struct out o = out_init(out, cap);

	PUT_LIT(&o, WELCOME_HEAD);
	put_cstr(&o, version);
	PUT_LIT(&o, WELCOME_EPOCH);
	put_cstr(&o, epoch);
	PUT_LIT(&o, "}");
	return out_done(&o);
}
