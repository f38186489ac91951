"""RFC 6455 conformance of build/echo-server, case family by case family as
the Autobahn testsuite groups them (1.x framing, 2.x pings, 3.x reserved
bits, 4.x opcodes, 5.x fragmentation, 6.x UTF-8, 7.x close).  Limits (9.x)
and compression (12.x/13.x) are in test_conformance_limits.py and
test_conformance_deflate.py.

The Autobahn suite itself needs PyPI or Docker; these are our own cases,
written against the RFC, over a raw socket client (lib/wsconform.py) so that
any byte can be sent.  Every failure case asserts the exact close code and
that the server closes TCP within a bounded time.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import wsconform  # noqa: E402
from wsconform import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG,  # noqa: E402
                   OP_TEXT, Client, close_payload, frame)

SERVER = None


def setUpModule():
    global SERVER
    SERVER = wsconform.Server("echo-server")


def tearDownModule():
    alive = SERVER.alive()
    status = SERVER.stop()
    if not alive:
        raise AssertionError(f"echo-server died during the tests:\n{SERVER.stderr()}")
    if status != 0:
        raise AssertionError(f"echo-server exited with {status} after SIGTERM:\n{SERVER.stderr()}")


class Base(unittest.TestCase):
    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.shutdown()
        self.assertTrue(SERVER.alive(), f"echo-server died:\n{SERVER.stderr()}")

    def connect(self, **kw):
        c = Client(SERVER.port, **kw)
        self.clients.append(c)
        return c

    def echo(self, c, op, payload, **kw):
        """Sends one message, expects it back unchanged, as one frame."""
        c.send_frame(op, payload, **kw)
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.fin, f.rsv), (op, True, 0), repr(f))
        self.assertEqual(f.payload, payload)

    def ping_ok(self, c, payload=b"alive"):
        """The connection still answers a ping (proves liveness after a
        frame that must be ignored)."""
        c.send_frame(OP_PING, payload)
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, payload), repr(f))


def pattern(n, seed=0):
    """n bytes that are not all alike (catches offset/masking bugs)."""
    return bytes((i * 31 + seed + (i >> 8)) & 0xFF for i in range(n))


def text_pattern(n):
    base = b"Hello, ringcast! 0123456789 abcdefghijklmnopqrstuvwxyz "
    return (base * (n // len(base) + 1))[:n]


SIZES = [0, 1, 125, 126, 127, 128, 1000, 65535, 65536]


class Framing1(Base):
    """1.x: text and binary frames of every length form."""

    def test_1_1_text_sizes(self):
        c = self.connect()
        for n in SIZES:
            with self.subTest(n=n):
                self.echo(c, OP_TEXT, text_pattern(n))
        c.close()

    def test_1_2_binary_sizes(self):
        c = self.connect()
        for n in SIZES:
            with self.subTest(n=n):
                self.echo(c, OP_BINARY, pattern(n, n))
        c.close()

    def test_1_1_8_text_65536_in_chunks_of_997(self):
        c = self.connect()
        self.echo(c, OP_TEXT, text_pattern(65536), chunk=997)
        c.close()

    def test_1_2_8_binary_65536_in_chunks_of_997(self):
        c = self.connect()
        self.echo(c, OP_BINARY, pattern(65536, 7), chunk=997)
        c.close()

    def test_1_byte_by_byte(self):
        # 7-bit and 16-bit lengths, header and payload one byte per segment
        c = self.connect()
        for n in (0, 20, 125, 300):
            with self.subTest(n=n):
                self.echo(c, OP_BINARY, pattern(n, 3), chunk=1)
                self.echo(c, OP_TEXT, text_pattern(n), chunk=1)
        c.close()

    def test_1_many_frames_in_one_segment(self):
        c = self.connect()
        msgs = [pattern(n, n) for n in range(0, 300, 7)]
        c.send(b"".join(frame(OP_BINARY, m) for m in msgs))
        for m in msgs:
            f = c.recv_frame()
            self.assertEqual((f.opcode, f.payload), (OP_BINARY, m))
        c.close()

    def test_1_64bit_length_form_accepted(self):
        # RFC 6455 asks for the minimal form; a longer one still parses
        # exactly (we only check the echo is right, either way is allowed
        # to fail with 1002, so accept both but nothing else)
        c = self.connect()
        c.send_frame(OP_BINARY, b"abc", length_form=64)
        f = c.recv_frame()
        if f.opcode == OP_CLOSE:
            self.assertEqual(f.close_code, 1002)
            c.expect_tcp_close()
        else:
            self.assertEqual((f.opcode, f.payload), (OP_BINARY, b"abc"))

    def test_1_unmasked_client_frame_is_1002(self):
        c = self.connect()
        c.send_frame(OP_TEXT, b"not masked", mask=False)
        c.expect_close(1002)


class Pings2(Base):
    """2.x: pings and pongs."""

    def test_2_1_ping_empty(self):
        c = self.connect()
        self.ping_ok(c, b"")
        c.close()

    def test_2_2_ping_text_payload(self):
        c = self.connect()
        self.ping_ok(c, b"Hello, world!")
        c.close()

    def test_2_3_ping_binary_payload(self):
        c = self.connect()
        self.ping_ok(c, bytes([0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF]))
        c.close()

    def test_2_4_ping_125_bytes(self):
        c = self.connect()
        self.ping_ok(c, pattern(125))
        c.close()

    def test_2_5_ping_126_bytes_is_1002(self):
        c = self.connect()
        c.send_frame(OP_PING, pattern(126))
        c.expect_close(1002)

    def test_2_6_ping_125_bytes_byte_by_byte(self):
        c = self.connect()
        c.send_frame(OP_PING, pattern(125, 9), chunk=1)
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, pattern(125, 9)))
        c.close()

    def test_2_7_unsolicited_pong_empty_ignored(self):
        c = self.connect()
        c.send_frame(OP_PONG, b"")
        self.ping_ok(c, b"after pong")  # the pong got no answer of its own
        c.close()

    def test_2_8_unsolicited_pong_payload_ignored(self):
        c = self.connect()
        c.send_frame(OP_PONG, b"unsolicited pong payload")
        self.ping_ok(c, b"after pong")
        c.close()

    def test_2_9_unsolicited_pong_then_ping(self):
        c = self.connect()
        c.send(frame(OP_PONG, b"unsolicited") + frame(OP_PING, b"ping payload"))
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b"ping payload"))
        c.close()

    def test_2_10_ten_pings_answered_in_order(self):
        c = self.connect()
        pings = [f"payload-{i}".encode() for i in range(10)]
        c.send(b"".join(frame(OP_PING, p) for p in pings))
        for p in pings:
            f = c.recv_frame()
            self.assertEqual((f.opcode, f.payload), (OP_PONG, p))
        c.close()

    def test_2_11_ten_pings_byte_by_byte(self):
        c = self.connect()
        pings = [f"payload-{i}".encode() for i in range(10)]
        c.send(b"".join(frame(OP_PING, p) for p in pings), chunk=1)
        for p in pings:
            f = c.recv_frame()
            self.assertEqual((f.opcode, f.payload), (OP_PONG, p))
        c.close()

    def test_2_fragmented_ping_is_1002(self):
        c = self.connect()
        c.send_frame(OP_PING, b"frag", fin=False)
        c.expect_close(1002)

    def test_2_ping_126_with_16bit_length_header_only(self):
        # the length alone is enough to fail: the payload never comes
        c = self.connect()
        c.send(frame(OP_PING, pattern(126))[:8])
        c.expect_close(1002)


class Reserved3(Base):
    """3.x: reserved bits without an extension that defines them."""

    def bad_after_good(self, bad, **kw):
        c = self.connect()
        self.echo(c, OP_TEXT, b"before")
        # the bad frame, then frames that must not be answered any more
        c.send(frame(**bad) + frame(OP_TEXT, b"after") + frame(OP_PING, b"after"))
        c.expect_close(1002)

    def test_3_1_rsv1_without_deflate(self):
        self.bad_after_good(dict(opcode=OP_TEXT, payload=b"rsv1", rsv1=True))

    def test_3_2_rsv2_text(self):
        self.bad_after_good(dict(opcode=OP_TEXT, payload=b"rsv2", rsv2=True))

    def test_3_3_rsv3_text(self):
        self.bad_after_good(dict(opcode=OP_TEXT, payload=b"rsv3", rsv3=True))

    def test_3_4_rsv1_rsv2_binary(self):
        self.bad_after_good(dict(opcode=OP_BINARY, payload=b"\x00\xff", rsv1=True, rsv2=True))

    def test_3_5_rsv1_rsv3_binary(self):
        self.bad_after_good(dict(opcode=OP_BINARY, payload=b"\x00\xff", rsv1=True, rsv3=True))

    def test_3_6_rsv2_rsv3_ping(self):
        self.bad_after_good(dict(opcode=OP_PING, payload=b"p", rsv2=True, rsv3=True))

    def test_3_7_all_rsv_close(self):
        self.bad_after_good(dict(opcode=OP_CLOSE, payload=close_payload(1000),
                                 rsv1=True, rsv2=True, rsv3=True))

    def test_3_rsv2_byte_by_byte(self):
        c = self.connect()
        c.send_frame(OP_TEXT, b"rsv2 slowly", rsv2=True, chunk=1)
        c.expect_close(1002)

    def test_3_rsv1_on_ping_without_deflate(self):
        self.bad_after_good(dict(opcode=OP_PING, payload=b"z", rsv1=True))


class Opcodes4(Base):
    """4.x: reserved opcodes 3-7 (data) and 0xB-0xF (control)."""

    def check(self, opcode, payload):
        c = self.connect()
        self.echo(c, OP_TEXT, b"before")
        c.send(frame(opcode, payload) + frame(OP_PING, b"after"))
        c.expect_close(1002)

    def test_4_1_reserved_data_opcodes(self):
        for op in (3, 4, 5, 6, 7):
            for payload in (b"", b"reserved opcode"):
                with self.subTest(op=op, n=len(payload)):
                    self.check(op, payload)

    def test_4_2_reserved_control_opcodes(self):
        for op in (0xB, 0xC, 0xD, 0xE, 0xF):
            for payload in (b"", b"reserved opcode"):
                with self.subTest(op=op, n=len(payload)):
                    self.check(op, payload)

    def test_4_reserved_opcode_inside_fragmented_message(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(5, b"x") +
               frame(OP_CONT, b"ment"))
        c.expect_close(1002)


class Fragmentation5(Base):
    """5.x: fragmented messages and control frames between fragments."""

    def test_5_1_fragmented_ping(self):
        c = self.connect()
        c.send(frame(OP_PING, b"frag", fin=False) + frame(OP_CONT, b"ment"))
        c.expect_close(1002)

    def test_5_2_fragmented_pong(self):
        c = self.connect()
        c.send(frame(OP_PONG, b"frag", fin=False) + frame(OP_CONT, b"ment"))
        c.expect_close(1002)

    def test_5_3_text_two_fragments(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_CONT, b"ment"))
        self.assertEqual(c.recv_message(), (OP_TEXT, b"fragment"))
        c.close()

    def test_5_4_text_two_fragments_byte_by_byte(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_CONT, b"ment"), chunk=1)
        self.assertEqual(c.recv_message(), (OP_TEXT, b"fragment"))
        c.close()

    def test_5_5_binary_many_fragments(self):
        c = self.connect()
        data = pattern(70000, 5)
        cuts = [0, 1, 125, 126, 1000, 1001, 65536, 69999, 70000]
        frames = []
        for i in range(len(cuts) - 1):
            op = OP_BINARY if i == 0 else OP_CONT
            frames.append(frame(op, data[cuts[i]:cuts[i + 1]], fin=i == len(cuts) - 2))
        c.send(b"".join(frames))
        self.assertEqual(c.recv_message(), (OP_BINARY, data))
        c.close()

    def test_5_6_ping_between_fragments_answered_first(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_PING, b"in between") +
               frame(OP_CONT, b"ment"))
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b"in between"))
        self.assertEqual(c.recv_message(), (OP_TEXT, b"fragment"))
        c.close()

    def test_5_7_ping_answered_before_the_message_ends(self):
        # the pong must come while the message is still open: nothing else
        # is sent until it has arrived
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_PING, b"now"))
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b"now"))
        c.send_frame(OP_CONT, b"ment")
        self.assertEqual(c.recv_message(), (OP_TEXT, b"fragment"))
        c.close()

    def test_5_8_pongs_between_fragments_byte_by_byte(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_PONG, b"x") +
               frame(OP_CONT, b"me", fin=False) + frame(OP_PING, b"y") +
               frame(OP_CONT, b"nt"), chunk=1)
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b"y"))
        self.assertEqual(c.recv_message(), (OP_TEXT, b"fragment"))
        c.close()

    def test_5_9_continuation_fin_without_start(self):
        c = self.connect()
        c.send(frame(OP_CONT, b"orphan") + frame(OP_TEXT, b"after"))
        c.expect_close(1002)

    def test_5_10_continuation_nofin_without_start(self):
        c = self.connect()
        c.send(frame(OP_CONT, b"orphan", fin=False) + frame(OP_TEXT, b"after"))
        c.expect_close(1002)

    def test_5_11_continuation_without_start_byte_by_byte(self):
        c = self.connect()
        c.send(frame(OP_CONT, b"orphan"), chunk=1)
        c.expect_close(1002)

    def test_5_15_continuation_after_a_complete_message(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag1", fin=False) + frame(OP_CONT, b"frag2") +
               frame(OP_CONT, b"frag3", fin=False) + frame(OP_CONT, b"frag4"))
        self.assertEqual(c.recv_message(), (OP_TEXT, b"frag1frag2"))
        c.expect_close(1002)

    def test_5_17_new_text_inside_fragmented_message(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag1", fin=False) + frame(OP_TEXT, b"frag2"))
        c.expect_close(1002)

    def test_5_18_new_binary_nofin_inside_fragmented_text(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag1", fin=False) + frame(OP_BINARY, b"frag2", fin=False))
        c.expect_close(1002)

    def test_5_19_pings_between_five_fragments(self):
        c = self.connect()
        parts = [b"fragment1", b"fragment2", b"fragment3", b"fragment4", b"fragment5"]
        for i, p in enumerate(parts):
            c.send_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(parts) - 1)
            if i < len(parts) - 1:
                c.send_frame(OP_PING, f"pongme {i}".encode())
                f = c.recv_frame()
                self.assertEqual((f.opcode, f.payload), (OP_PONG, f"pongme {i}".encode()))
        self.assertEqual(c.recv_message(), (OP_TEXT, b"".join(parts)))
        c.close()

    def test_5_empty_fragments(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"", fin=False) + frame(OP_CONT, b"", fin=False) +
               frame(OP_CONT, b"abc", fin=False) + frame(OP_CONT, b""))
        self.assertEqual(c.recv_message(), (OP_TEXT, b"abc"))
        c.send(frame(OP_BINARY, b"", fin=False) + frame(OP_CONT, b""))
        self.assertEqual(c.recv_message(), (OP_BINARY, b""))
        c.send(frame(OP_TEXT, b"", fin=False) + frame(OP_PING, b"p") + frame(OP_CONT, b""))
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b"p"))
        self.assertEqual(c.recv_message(), (OP_TEXT, b""))
        c.close()

    def test_5_messages_after_a_fragmented_one(self):
        # the state is reset after FIN: the next message starts clean
        c = self.connect()
        for i in range(20):
            c.send(frame(OP_BINARY, pattern(i, i), fin=False) + frame(OP_CONT, pattern(300, i)))
            self.assertEqual(c.recv_message(), (OP_BINARY, pattern(i, i) + pattern(300, i)))
            self.echo(c, OP_TEXT, text_pattern(i))
        c.close()

    def test_5_close_between_fragments(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"frag", fin=False) + frame(OP_CLOSE, close_payload(1000)) +
               frame(OP_CONT, b"ment"))
        c.expect_close(1000)


# 6.x material: (name, bytes).  The valid list covers every encoded length
# and the boundary code points; the invalid one the kinds of malformation.
VALID_UTF8 = [
    ("ascii", b"Hello, world"),
    ("mixed", "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode()),
    ("greek", "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()),
    ("cjk", "\u4e2d\u6587\u6e2c\u8a66 \u65e5\u672c\u8a9e".encode()),
    ("emoji", "\U0001F600 \U0001F680 \U0001F30D".encode()),
    ("U+0000", b"\x00"),
    ("U+007F", b"\x7f"),
    ("U+0080", b"\xc2\x80"),
    ("U+07FF", b"\xdf\xbf"),
    ("U+0800", b"\xe0\xa0\x80"),
    ("U+D7FF", b"\xed\x9f\xbf"),
    ("U+E000", b"\xee\x80\x80"),
    ("U+FFFD", b"\xef\xbf\xbd"),
    ("U+FFFF", b"\xef\xbf\xbf"),
    ("U+10000", b"\xf0\x90\x80\x80"),
    ("U+10FFFF", b"\xf4\x8f\xbf\xbf"),
    ("noncharacters", b"\xef\xbf\xbe\xef\xbf\xbf\xf0\x9f\xbf\xbe"),
]

INVALID_UTF8 = [
    ("surrogate_high", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"),
    ("surrogate_low", b"\xed\xbf\xbf"),
    ("surrogate_pair", b"\xed\xa0\x80\xed\xb0\x80"),
    ("above_10FFFF", b"\xf4\x90\x80\x80"),
    ("f5", b"\xf5\x80\x80\x80"),
    ("overlong_slash_2", b"\xc0\xaf"),
    ("overlong_slash_3", b"\xe0\x80\xaf"),
    ("overlong_slash_4", b"\xf0\x80\x80\xaf"),
    ("overlong_max_2", b"\xc1\xbf"),
    ("overlong_max_3", b"\xe0\x9f\xbf"),
    ("overlong_max_4", b"\xf0\x8f\xbf\xbf"),
    ("five_byte", b"\xf8\x88\x80\x80\x80"),
    ("six_byte", b"\xfc\x84\x80\x80\x80\x80"),
    ("fe", b"\xfe"),
    ("ff", b"\xff"),
    ("lone_continuation", b"\x80"),
    ("continuations", b"\x80\xbf\x80\xbf"),
    ("lead_then_ascii", b"\xc2A"),
    ("truncated_2_at_end", b"abc\xce"),
    ("truncated_3_at_end", b"abc\xe2\x82"),
    ("truncated_4_at_end", b"abc\xf0\x9f\x98"),
    ("valid_then_ff", "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xff"),
]


class Utf8_6(Base):
    """6.x: UTF-8 in text messages, whole, fragmented and chunked."""

    def test_6_valid_single_frame(self):
        c = self.connect()
        for name, data in VALID_UTF8:
            with self.subTest(name):
                self.echo(c, OP_TEXT, data)
        c.close()

    def test_6_valid_one_byte_per_fragment(self):
        # every multi-byte code point is split across frames
        c = self.connect()
        for name, data in VALID_UTF8:
            with self.subTest(name):
                frames = [frame(OP_TEXT if i == 0 else OP_CONT, data[i:i + 1],
                                fin=i == len(data) - 1) for i in range(len(data))]
                c.send(b"".join(frames))
                self.assertEqual(c.recv_message(), (OP_TEXT, data))
        c.close()

    def test_6_valid_single_frame_byte_by_byte(self):
        c = self.connect()
        data = b"".join(d for _, d in VALID_UTF8)
        self.echo(c, OP_TEXT, data, chunk=1)
        c.close()

    def test_6_invalid_single_frame(self):
        for name, data in INVALID_UTF8:
            with self.subTest(name):
                c = self.connect()
                c.send(frame(OP_TEXT, data) + frame(OP_PING, b"after"))
                c.expect_close(1007)

    def test_6_invalid_one_byte_per_fragment(self):
        for name, data in INVALID_UTF8:
            with self.subTest(name):
                c = self.connect()
                frames = [frame(OP_TEXT if i == 0 else OP_CONT, data[i:i + 1],
                                fin=i == len(data) - 1) for i in range(len(data))]
                c.send(b"".join(frames))
                c.expect_close(1007)

    def test_6_invalid_byte_by_byte(self):
        for name, data in INVALID_UTF8[:8]:
            with self.subTest(name):
                c = self.connect()
                c.send_frame(OP_TEXT, data, chunk=1)
                c.expect_close(1007)

    def test_6_binary_is_not_checked(self):
        c = self.connect()
        for name, data in INVALID_UTF8:
            with self.subTest(name):
                self.echo(c, OP_BINARY, data)
        c.close()

    def test_6_4_1_fail_fast_first_fragment_never_finished(self):
        # the bad bytes are in the first fragment and FIN never comes: the
        # server must not wait for the end of the message
        c = self.connect()
        c.send_frame(OP_TEXT, "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xf4\x90\x80\x80",
                     fin=False)
        c.expect_close(1007, timeout=2.0)

    def test_6_4_2_fail_fast_invalid_lead_then_more(self):
        c = self.connect()
        c.send_frame(OP_TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", fin=False)
        c.send_frame(OP_CONT, b"\x90", fin=False)  # now certain: above U+10FFFF
        c.expect_close(1007, timeout=2.0)

    def test_6_4_3_fail_fast_within_one_unfinished_frame(self):
        # a 100-byte frame of which only the invalid first part arrives
        c = self.connect()
        data = b"valid so far \xc0\xaf" + b"x" * 85
        c.send(frame(OP_TEXT, data)[:2 + 4 + 16])
        c.expect_close(1007, timeout=2.0)

    def test_6_invalid_in_a_later_fragment(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"good start ", fin=False) + frame(OP_CONT, b"ok", fin=False) +
               frame(OP_CONT, b"\xed\xa0\x80"))
        c.expect_close(1007)

    def test_6_code_point_split_at_fragment_end(self):
        c = self.connect()
        euro = "\u20ac".encode()
        c.send(frame(OP_TEXT, b"price " + euro[:1], fin=False) +
               frame(OP_CONT, euro[1:2], fin=False) + frame(OP_CONT, euro[2:] + b" 5"))
        self.assertEqual(c.recv_message(), (OP_TEXT, b"price " + euro + b" 5"))
        c.close()

    def test_6_truncated_code_point_at_message_end(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"abc\xe2\x82", fin=False) + frame(OP_CONT, b""))
        c.expect_close(1007)

    def test_6_utf8_state_resets_between_messages(self):
        # a valid message must not be judged with a previous message's state
        c = self.connect()
        for _ in range(3):
            self.echo(c, OP_TEXT, "\u03ba\u1f79\u03c3\u03bc\u03b5".encode())
            self.echo(c, OP_BINARY, b"\xe2\x82")  # binary: never checked
        c.close()


VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


class Close7(Base):
    """7.x: the close handshake."""

    def test_7_1_1_echo_then_close(self):
        c = self.connect()
        self.echo(c, OP_TEXT, b"Hello World!")
        c.close(1000)

    def test_7_1_2_close_twice(self):
        c = self.connect()
        c.send(frame(OP_CLOSE, close_payload(1000)) + frame(OP_CLOSE, close_payload(1000)))
        c.expect_close(1000)

    def test_7_1_3_ping_after_close_unanswered(self):
        c = self.connect()
        c.send(frame(OP_CLOSE, close_payload(1000)) + frame(OP_PING, b"too late"))
        c.expect_close(1000)

    def test_7_1_4_text_after_close_not_echoed(self):
        c = self.connect()
        c.send(frame(OP_CLOSE, close_payload(1000)) + frame(OP_TEXT, b"too late"))
        c.expect_close(1000)

    def test_7_1_5_fragment_close_continuation(self):
        c = self.connect()
        c.send(frame(OP_TEXT, b"fragment1", fin=False) + frame(OP_CLOSE, close_payload(1000)) +
               frame(OP_CONT, b"fragment2"))
        c.expect_close(1000)

    def test_7_1_6_large_message_then_close(self):
        c = self.connect()
        data = text_pattern(256 * 1024)
        c.send(frame(OP_TEXT, data) + frame(OP_CLOSE, close_payload(1000)))
        self.assertEqual(c.recv_message(), (OP_TEXT, data))
        c.expect_close(1000)

    def test_7_3_1_close_empty_payload(self):
        c = self.connect()
        c.send_frame(OP_CLOSE, b"")
        f = c.expect_close((None, 1000))
        self.assertIn(f.payload, (b"", close_payload(1000)))

    def test_7_3_2_close_one_byte_is_1002(self):
        c = self.connect()
        c.send_frame(OP_CLOSE, b"\x03")
        c.expect_close(1002)

    def test_7_3_3_close_1000_no_reason(self):
        c = self.connect()
        f = c.close(1000)
        self.assertEqual(f.payload, close_payload(1000))

    def test_7_3_4_close_1000_with_reason_echoed(self):
        c = self.connect()
        f = c.close(1000, b"Hello World!")
        self.assertEqual(f.payload, close_payload(1000, b"Hello World!"))

    def test_7_3_5_close_reason_123_bytes(self):
        c = self.connect()
        f = c.close(1000, b"*" * 123)
        self.assertEqual(f.close_code, 1000)

    def test_7_3_6_close_reason_124_bytes_is_1002(self):
        c = self.connect()
        c.send_frame(OP_CLOSE, close_payload(1000, b"*" * 124))
        c.expect_close(1002)

    def test_7_5_1_close_reason_invalid_utf8_is_1007(self):
        c = self.connect()
        c.send_frame(OP_CLOSE, close_payload(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc"
                                                   b"\xce\xb5\xed\xa0\x80edited"))
        c.expect_close(1007)

    def test_7_5_2_close_reason_truncated_utf8_is_1007(self):
        c = self.connect()
        c.send_frame(OP_CLOSE, close_payload(1000, b"ok \xe2\x82"))
        c.expect_close(1007)

    def test_7_7_valid_close_codes_echoed(self):
        for code in VALID_CODES:
            with self.subTest(code=code):
                c = self.connect()
                c.close(code)

    def test_7_9_invalid_close_codes_are_1002(self):
        for code in INVALID_CODES:
            with self.subTest(code=code):
                c = self.connect()
                c.send_frame(OP_CLOSE, close_payload(code))
                c.expect_close(1002)

    def test_7_close_byte_by_byte(self):
        c = self.connect()
        c.send_frame(OP_CLOSE, close_payload(1001, b"going away"), chunk=1)
        c.expect_close(1001)

    def test_7_data_after_close_in_separate_segments_ignored(self):
        c = self.connect()
        c.send_frame(OP_CLOSE, close_payload(1000))
        f = c.recv_frame()
        self.assertEqual(f.close_code, 1000)
        c.send_frame(OP_TEXT, b"ignored")
        c.send_frame(OP_PING, b"ignored")
        c.expect_tcp_close()
        self.assertEqual(c.buf, b"")

    def test_7_server_closes_tcp_without_our_eof(self):
        # we never shut down our side: the server must still close first
        c = self.connect()
        c.send_frame(OP_CLOSE, close_payload(1000))
        c.expect_close(1000, timeout=3.0)

    def test_7_many_connections_close_cleanly(self):
        conns = [self.connect() for _ in range(50)]
        for i, c in enumerate(conns):
            self.echo(c, OP_TEXT, f"conn {i}".encode())
        for c in conns:
            c.close(1000)


if __name__ == "__main__":
    unittest.main(verbosity=1)
