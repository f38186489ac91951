"""RFC 6455 + RFC 7692 conformance of build/echo-server, Autobahn families
12.x and 13.x: permessage-deflate negotiated with various parameters, and
compressed messages of 16..16384 bytes (and fragmented ones) echoed
correctly, against the default server (server_no_context_takeover always)
and one that allows context takeover (ECHO_CONTEXT_TAKEOVER).  Frames are
compressed and inflated here with Python's zlib (raw deflate).  Also the
failures: RSV1 on continuations and control frames, corrupt data, invalid
UTF-8 after inflating.  See test_conformance.py."""
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import wsconform  # noqa: E402
from wsconform import (OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT,  # noqa: E402
                       frame, parse_extension, pattern, text_pattern)

SERVERS = {}
SIZES = [16, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]

# offers the server must accept, as Autobahn 13.x combines them
OFFERS = [
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_no_context_takeover",
    "permessage-deflate; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; server_max_window_bits=9",
    "permessage-deflate; server_max_window_bits=12",
    "permessage-deflate; client_max_window_bits=9",
    "permessage-deflate; client_max_window_bits=15; server_max_window_bits=15",
    "permessage-deflate; client_max_window_bits=9; server_max_window_bits=9; "
    "client_no_context_takeover",
]


def setUpModule():
    SERVERS["default"] = wsconform.Server("echo-server")
    SERVERS["takeover"] = wsconform.Server("echo-server", env={"ECHO_CONTEXT_TAKEOVER": "1"})


def tearDownModule():
    for s in SERVERS.values():
        wsconform.stop_checked(s)


def message(size, seed, binary):
    """Compressible but not trivial: text with a random word mixed in."""
    rnd = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"ringcast", b"\xce\xba\xe1\xbd\xb9"]
    out = b""
    while len(out) < size:
        out += rnd.choice(words) + b" "
    out = out[:size]
    if binary:
        return bytes(b ^ (i & 7) for i, b in enumerate(out))
    # never cut a multi-byte character in two
    return out.decode("utf-8", "ignore").encode()


class Negotiation(wsconform.ServerCase, unittest.TestCase):
    def server(self):
        return SERVERS["default"]

    def params(self, offer):
        c = self.connect(extensions=offer)
        if c.extensions is None:
            return c, None
        name, params = parse_extension(c.extensions)
        self.assertEqual(name, "permessage-deflate")
        return c, params

    def test_accepted_offers(self):
        for offer in OFFERS:
            with self.subTest(offer):
                c, p = self.params(offer)
                self.assertIsNotNone(p, "offer declined")
                _, asked = parse_extension(offer)
                # this server always resets its context (compress once)
                self.assertIn("server_no_context_takeover", p)
                if "client_no_context_takeover" in asked:
                    self.assertIn("client_no_context_takeover", p)
                if "server_max_window_bits" in asked:
                    self.assertLessEqual(int(p["server_max_window_bits"]),
                                         int(asked["server_max_window_bits"]))
                if "client_max_window_bits" in p:
                    self.assertIn("client_max_window_bits", asked,
                                  "client_max_window_bits answered unasked")
                    if asked["client_max_window_bits"]:
                        self.assertLessEqual(int(p["client_max_window_bits"]),
                                             int(asked["client_max_window_bits"]))
                for k in p:
                    self.assertIn(k, ("server_no_context_takeover", "client_no_context_takeover",
                                      "server_max_window_bits", "client_max_window_bits"))
                c.close()

    def test_first_acceptable_offer_wins(self):
        c, p = self.params("x-webkit-deflate-frame, permessage-deflate; unknown_param, "
                           "permessage-deflate; server_max_window_bits=10")
        self.assertEqual(p.get("server_max_window_bits"), "10")
        c.close()

    def test_declined_offers_give_a_plain_connection(self):
        for offer in ("permessage-deflate; server_max_window_bits=16",
                      "permessage-deflate; server_max_window_bits",
                      "permessage-deflate; client_max_window_bits=7",
                      "permessage-deflate; bogus=1",
                      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                      "x-webkit-deflate-frame"):
            with self.subTest(offer):
                c, p = self.params(offer)
                self.assertIsNone(p)
                self.echo(c, OP_TEXT, text_pattern(1000))
                c.send_frame(OP_TEXT, b"compressed?", rsv1=True)
                c.expect_close(1002)

    def test_window_8_requested_still_works(self):
        # zlib cannot deflate with 8 bits: the server may answer 8 and send
        # uncompressed, or 9; either way echoes must work
        c, p = self.params("permessage-deflate; server_max_window_bits=8")
        self.assertIsNotNone(p)
        for n in (100, 5000):
            c.send_frame(OP_TEXT, c.pmd.deflate(text_pattern(n)), rsv1=True)
            self.assertEqual(c.recv_message(), (OP_TEXT, text_pattern(n)))
        c.close()


class Compression12(wsconform.ServerCase, unittest.TestCase):
    server_name = "default"

    def server(self):
        return SERVERS[self.server_name]

    def run_offer(self, offer, binary, keep_context=True, count=3):
        c = self.connect(extensions=offer)
        self.assertIsNotNone(c.pmd, f"{offer!r} declined")
        compressed = 0
        for size in SIZES:
            for i in range(count):
                data = message(size, size * 10 + i, binary)
                op = OP_BINARY if binary else OP_TEXT
                c.send_frame(op, c.pmd.deflate(data, keep_context), rsv1=True)
                f = c.recv_frame()
                while f.opcode == OP_PONG:
                    f = c.recv_frame()
                self.assertTrue(f.fin)
                self.assertEqual(f.opcode, op)
                got = c.pmd.inflate(f.payload) if f.rsv & 4 else f.payload
                compressed += bool(f.rsv & 4)
                self.assertEqual(got, data, f"size {size} #{i}")
        c.close()
        return compressed

    def test_12_1_text(self):
        for offer in OFFERS:
            with self.subTest(offer):
                n = self.run_offer(offer, binary=False)
                self.assertGreater(n, 0, "the server never compressed")

    def test_12_2_binary(self):
        for offer in OFFERS:
            with self.subTest(offer):
                self.run_offer(offer, binary=True)

    def test_12_fresh_context_each_message(self):
        # a client that keeps no context though it may: always fine
        self.run_offer("permessage-deflate", binary=False, keep_context=False)

    def test_13_many_messages_with_client_context(self):
        # later messages refer back into earlier ones: the server's
        # inflater must keep its window across messages
        c = self.connect(extensions="permessage-deflate")
        self.assertNotIn("client_no_context_takeover", c.pmd.params)
        for i in range(200):
            data = text_pattern(300, i % 7)
            c.send_frame(OP_TEXT, c.pmd.deflate(data), rsv1=True)
            self.assertEqual(c.recv_message(), (OP_TEXT, data))
        c.close()

    def test_uncompressed_frames_mixed_in(self):
        c = self.connect(extensions="permessage-deflate")
        for i, size in enumerate(SIZES):
            data = message(size, i, binary=False)
            if i % 2:
                c.send_frame(OP_TEXT, data)
            else:
                c.send_frame(OP_TEXT, c.pmd.deflate(data), rsv1=True)
            self.assertEqual(c.recv_message(), (OP_TEXT, data))
        c.close()

    def test_fragmented_compressed_message(self):
        c = self.connect(extensions="permessage-deflate")
        for size in (16, 1000, 16384, 100000):
            for nfrag in (1, 2, 3, 10):
                with self.subTest(size=size, nfrag=nfrag):
                    data = message(size, size + nfrag, binary=False)
                    z = c.pmd.deflate(data)
                    step = max(1, len(z) // nfrag + 1)
                    pieces = [z[i:i + step] for i in range(0, len(z), step)] + [b""]
                    frames = [frame(OP_TEXT if i == 0 else OP_CONT, p, rsv1=i == 0,
                                    fin=i == len(pieces) - 1) for i, p in enumerate(pieces)]
                    c.send(b"".join(frames))
                    self.assertEqual(c.recv_message(), (OP_TEXT, data))
        c.close()

    def test_compressed_byte_by_byte_with_ping_inside(self):
        c = self.connect(extensions="permessage-deflate")
        data = message(2000, 1, binary=True)
        z = c.pmd.deflate(data)
        half = len(z) // 2
        c.send(frame(OP_BINARY, z[:half], rsv1=True, fin=False) + frame(OP_PING, b"p") +
               frame(OP_CONT, z[half:]), chunk=1)
        f = c.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b"p"))
        self.assertEqual(c.recv_message(), (OP_BINARY, data))
        c.close()

    def test_empty_compressed_message(self):
        c = self.connect(extensions="permessage-deflate")
        for op in (OP_TEXT, OP_BINARY):
            c.send_frame(op, c.pmd.deflate(b""), rsv1=True)
            self.assertEqual(c.recv_message(), (op, b""))
            c.send_frame(op, b"\x00", rsv1=True)  # RFC 7692 7.2.3.6: one empty block
            self.assertEqual(c.recv_message(), (op, b""))
        c.close()


class Compression13Takeover(Compression12):
    """The same cases against a server that keeps its compression context:
    the echoes refer back into earlier messages (and, with a smaller
    server_max_window_bits, must stay inside that window: inflate() uses
    exactly the negotiated window)."""
    server_name = "takeover"

    def test_server_keeps_context_when_allowed(self):
        c = self.connect(extensions="permessage-deflate")
        self.assertNotIn("server_no_context_takeover", c.pmd.params)
        sizes = []
        for _ in range(5):
            data = text_pattern(2000, 42)
            c.send_frame(OP_TEXT, c.pmd.deflate(data), rsv1=True)
            f = c.recv_frame()
            self.assertEqual(c.pmd.inflate(f.payload), data)
            sizes.append(len(f.payload))
        # the repeats are references into the previous message
        self.assertLess(sizes[-1], sizes[0])
        c.close()

    def test_accepted_offers_takeover(self):
        for offer in OFFERS:
            with self.subTest(offer):
                c = self.connect(extensions=offer)
                _, asked = parse_extension(offer)
                self.assertEqual("server_no_context_takeover" in c.pmd.params,
                                 "server_no_context_takeover" in asked)
                c.close()


class DeflateErrors(wsconform.ServerCase, unittest.TestCase):
    def server(self):
        return SERVERS["default"]

    def conn(self):
        c = self.connect(extensions="permessage-deflate")
        self.assertIsNotNone(c.pmd)
        return c

    def test_rsv1_on_continuation_is_1002(self):
        c = self.conn()
        z = c.pmd.deflate(b"hello hello hello")
        c.send(frame(OP_TEXT, z[:3], rsv1=True, fin=False) + frame(OP_CONT, z[3:], rsv1=True))
        c.expect_close(1002)

    def test_rsv1_on_ping_is_1002(self):
        c = self.conn()
        c.send_frame(OP_PING, b"z", rsv1=True)
        c.expect_close(1002)

    def test_rsv2_with_deflate_is_1002(self):
        c = self.conn()
        c.send_frame(OP_TEXT, c.pmd.deflate(b"abc"), rsv1=True, rsv2=True)
        c.expect_close(1002)

    def test_corrupt_data(self):
        c = self.conn()
        c.send_frame(OP_BINARY, b"\xff\xff\xff\xff\xff", rsv1=True)
        c.expect_close((1002, 1007))

    def test_compressed_invalid_utf8_is_1007(self):
        c = self.conn()
        c.send_frame(OP_TEXT, c.pmd.deflate(b"\xce\xba\xe1\xbd\xb9\xed\xa0\x80edited"), rsv1=True)
        c.expect_close(1007)

    def test_compressed_invalid_utf8_fail_fast(self):
        # invalid bytes in the first fragment; FIN never comes
        c = self.conn()
        c.send_frame(OP_TEXT, c.pmd.deflate(b"ok so far \xc0\xaf and more"), rsv1=True, fin=False)
        c.expect_close(1007, timeout=2.0)

    def test_binary_compressed_then_valid_after_error_not_echoed(self):
        c = self.conn()
        c.send(frame(OP_TEXT, c.pmd.deflate(b"\xff"), rsv1=True) + frame(OP_TEXT, b"after"))
        c.expect_close(1007)

    def test_inflated_text_checked_across_fragments(self):
        c = self.conn()
        euro = "\u20ac".encode()
        z = c.pmd.deflate(b"abc" + euro * 100)
        c.send(frame(OP_TEXT, z[:5], rsv1=True, fin=False) + frame(OP_CONT, z[5:]))
        self.assertEqual(c.recv_message(), (OP_TEXT, b"abc" + euro * 100))
        c.close()


if __name__ == "__main__":
    unittest.main(verbosity=1)
