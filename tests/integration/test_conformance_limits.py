"""RFC 6455 conformance of build/echo-server, Autobahn family 9.x: large
messages in one frame, in frames of many sizes and written in chunks of many
sizes, message rates, and the size limit (1009).  See test_conformance.py."""
import os
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import wsconform  # noqa: E402
from wsconform import (OP_BINARY, OP_CONT, OP_TEXT, frame, pattern,  # noqa: E402
                       text_pattern)

MiB = 1 << 20
SERVERS = {}


def setUpModule():
    # the default limit (16 MiB) and a small one for the edge cases
    SERVERS["default"] = wsconform.Server("echo-server", env={"ECHO_NO_DEFLATE": "1"})
    SERVERS["small"] = wsconform.Server("echo-server", env={"ECHO_MAX_MESSAGE": "65536"})


def tearDownModule():
    for s in SERVERS.values():
        wsconform.stop_checked(s)


def fragments(op, data, size):
    out = []
    for i in range(0, max(len(data), 1), size):
        out.append(frame(op if i == 0 else OP_CONT, data[i:i + size],
                         fin=i + size >= len(data)))
    return b"".join(out)


class Limits9(wsconform.ServerCase, unittest.TestCase):
    def server(self):
        return SERVERS["default"]

    def test_9_1_text_single_frame(self):
        c = self.connect()
        for n in (64 * 1024, 256 * 1024, MiB, 4 * MiB, 8 * MiB, 16 * MiB):
            with self.subTest(n=n):
                self.echo(c, OP_TEXT, text_pattern(n, n))
        c.close()

    def test_9_2_binary_single_frame(self):
        c = self.connect()
        for n in (64 * 1024, 256 * 1024, MiB, 4 * MiB, 8 * MiB, 16 * MiB):
            with self.subTest(n=n):
                self.echo(c, OP_BINARY, pattern(n, 3))
        c.close()

    def test_9_3_text_4mib_in_fragments(self):
        c = self.connect()
        data = text_pattern(4 * MiB)
        for size in (64, 256, 1024, 4096, 16384, 65536, 256 * 1024, MiB, 4 * MiB):
            with self.subTest(size=size):
                c.send(fragments(OP_TEXT, data, size))
                self.assertEqual(c.recv_message(), (OP_TEXT, data))
        c.close()

    def test_9_4_binary_4mib_in_fragments(self):
        c = self.connect()
        data = pattern(4 * MiB, 11)
        for size in (64, 256, 1024, 4096, 16384, 65536, 256 * 1024, MiB, 4 * MiB):
            with self.subTest(size=size):
                c.send(fragments(OP_BINARY, data, size))
                self.assertEqual(c.recv_message(), (OP_BINARY, data))
        c.close()

    def test_9_5_text_1mib_written_in_chunks(self):
        c = self.connect()
        data = text_pattern(MiB)
        for chunk in (64, 128, 256, 512, 1024, 2048, 4096, 65536, 131072):
            with self.subTest(chunk=chunk):
                self.echo(c, OP_TEXT, data, chunk=chunk)
        c.close()

    def test_9_6_binary_1mib_written_in_chunks(self):
        c = self.connect()
        data = pattern(MiB, 5)
        for chunk in (64, 128, 256, 512, 1024, 2048, 4096, 65536, 131072):
            with self.subTest(chunk=chunk):
                self.echo(c, OP_BINARY, data, chunk=chunk)
        c.close()

    def test_9_7_many_small_messages_in_order(self):
        c = self.connect()
        for size in (0, 16, 64, 256, 1024, 4096):
            with self.subTest(size=size):
                msgs = [text_pattern(size, i) for i in range(1000)]
                c.send(b"".join(frame(OP_TEXT, m) for m in msgs))
                for m in msgs:
                    self.assertEqual(c.recv_message(), (OP_TEXT, m))
        c.close()

    def test_9_over_16mib_single_frame_is_1009(self):
        c = self.connect()
        # only the header and the start: the length alone must be refused
        c.send(self.header(OP_BINARY, 16 * MiB + 1) + b"\0" * 4096)
        c.expect_close(1009)

    def test_9_over_16mib_fragmented_is_1009(self):
        c = self.connect()
        piece = pattern(MiB, 1)
        c.send(b"".join(frame(OP_BINARY if i == 0 else OP_CONT, piece, fin=False)
                        for i in range(17)))
        c.expect_close(1009)

    @staticmethod
    def header(op, n):
        """A masked frame header with a 64-bit length (mask 01 02 03 04)."""
        return struct.pack("!BBQ", 0x80 | op, 0x80 | 127, n) + b"\1\2\3\4"


class SmallLimit9(wsconform.ServerCase, unittest.TestCase):
    """ECHO_MAX_MESSAGE=65536: the edges of the limit, exactly."""

    def server(self):
        return SERVERS["small"]

    def test_exactly_the_limit_single_frame(self):
        c = self.connect()
        self.echo(c, OP_BINARY, pattern(65536))
        c.close()

    def test_exactly_the_limit_fragmented(self):
        c = self.connect()
        c.send(fragments(OP_TEXT, text_pattern(65536), 1000))
        self.assertEqual(c.recv_message(), (OP_TEXT, text_pattern(65536)))
        c.close()

    def test_one_over_single_frame(self):
        c = self.connect()
        c.send_frame(OP_BINARY, pattern(65537))
        c.expect_close(1009)

    def test_one_over_fragmented(self):
        c = self.connect()
        c.send(frame(OP_TEXT, text_pattern(32768), fin=False) +
               frame(OP_CONT, text_pattern(32769)))
        c.expect_close(1009)

    def test_one_over_in_an_unfinished_fragment(self):
        # the limit is enforced before FIN arrives
        c = self.connect()
        c.send(frame(OP_TEXT, text_pattern(65537), fin=False))
        c.expect_close(1009)

    def test_compressed_one_over_is_1009(self):
        c = self.connect(extensions="permessage-deflate")
        self.assertIsNotNone(c.pmd)
        c.send_frame(OP_BINARY, c.pmd.deflate(b"\0" * 65537), rsv1=True)
        c.expect_close(1009)

    def test_compressed_exactly_the_limit(self):
        c = self.connect(extensions="permessage-deflate")
        c.send_frame(OP_BINARY, c.pmd.deflate(b"\0" * 65536), rsv1=True)
        self.assertEqual(c.recv_message(), (OP_BINARY, b"\0" * 65536))
        c.close()

    def test_compression_bomb_is_1009(self):
        # 8 MiB of zeros compresses to ~8 KiB; the inflater must stop at
        # the limit instead of producing it all
        c = self.connect(extensions="permessage-deflate")
        c.send_frame(OP_BINARY, c.pmd.deflate(b"\0" * (8 * MiB)), rsv1=True)
        c.expect_close(1009)


if __name__ == "__main__":
    unittest.main(verbosity=1)
