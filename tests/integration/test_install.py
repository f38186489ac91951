"""make install DESTDIR=... installs exactly the file list README.md
documents (public headers only, included as <ringcast/...>; both libraries,
the shared one with its soname; no generically named programs), a program
built with pkg-config against the staged tree runs, and make uninstall
removes every file again."""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from rctest import BUILD, ROOT, Proc, check, eq, free_port, run, wait_listening  # noqa: E402


def documented():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    m = re.search(r"<!-- install-list:.*?-->\n```\n(.*?)```", text, re.S)
    check(m, "README.md has the install list")
    return sorted(m.group(1).split())


def staged(root):
    out = []
    for d, dirs, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def make(*args):
    san = ["SAN=1"] if BUILD.rstrip("/").endswith("san") else []
    r = subprocess.run(["make", "-s", "-C", ROOT] + list(args) + san, capture_output=True,
                       timeout=600)
    eq(r.returncode, 0, f"make {args}: {r.stderr.decode()[-2000:]}")


def test_install_uninstall():
    with tempfile.TemporaryDirectory() as d:
        make("install", f"DESTDIR={d}", "PREFIX=/usr")
        eq(staged(os.path.join(d, "usr")), documented(), "installed files")
        lib = os.path.join(d, "usr", "lib")
        eq(os.readlink(os.path.join(lib, "libringcast.so")), "libringcast.so.0", "dev symlink")
        r = subprocess.run(["objdump", "-p", os.path.join(lib, "libringcast.so.0")],
                           capture_output=True, check=True, timeout=30)
        check(re.search(rb"SONAME\s+libringcast\.so\.0\n", r.stdout), "soname libringcast.so.0")
        inc = os.path.join(d, "usr", "include", "ringcast")
        for dirpath, _, files in os.walk(inc):
            for f in files:
                with open(os.path.join(dirpath, f)) as h:
                    bad = re.findall(r'^#include ".*"', h.read(), re.M)
                eq(bad, [], f"{f} includes only <ringcast/...> and system headers")
        build_and_run(d)
        make("uninstall", f"DESTDIR={d}", "PREFIX=/usr")
        eq(staged(os.path.join(d, "usr")), [], "files left after make uninstall")


def build_and_run(d):
    env = dict(os.environ, PKG_CONFIG_SYSROOT_DIR=d, PKG_CONFIG_LIBDIR=f"{d}/usr/lib/pkgconfig")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ringcast"], env=env,
                           capture_output=True, check=True).stdout.decode().split()
    src = os.path.join(d, "tiny.c")
    with open(src, "w") as f:
        # Every public header, then a pub/sub round trip through the library.
        f.write("".join(f"#include <ringcast/proto/{h}>\n" for h in sorted(
            os.listdir(os.path.join(d, "usr/include/ringcast/proto")))))
        f.write('#include <ringcast/rc.h>\n#include <ringcast/client.h>\n#include <stdio.h>\n'
                'int main(int c, char **v) { char e[256]; uint64_t seq = 0;\n'
                '  struct rc_pubsub *ps = rc_pubsub_open_blocking(v[1], NULL, 5000, e, sizeof(e));\n'
                '  if (!ps || rc_pubsub_publish_blocking(ps, "tiny", "hi", 2, 0, 5000, &seq))\n'
                '    return fprintf(stderr, "%s\\n", e), 1;\n'
                '  printf("seq %llu\\n", (unsigned long long)seq); rc_pubsub_close_blocking(ps);\n'
                '  (void)c; return 0; }\n')
    exe = os.path.join(d, "tiny")
    san = ["-fsanitize=address,undefined"] if BUILD.rstrip("/").endswith("san") else []
    r = subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-o", exe, src] + flags + san,
                       capture_output=True, timeout=120)
    eq(r.returncode, 0, f"compile with pkg-config flags {flags}: {r.stderr.decode()[-2000:]}")
    r = subprocess.run(["objdump", "-p", exe], capture_output=True, check=True, timeout=30)
    check(b"NEEDED               libringcast.so.0" in r.stdout, "linked to the shared library")
    port = free_port()
    b = Proc([os.path.join(BUILD, "ringcast"), "--listen", f"127.0.0.1:{port}"], name="ringcast")
    try:
        wait_listening(port)
        r = subprocess.run([exe, f"ws://127.0.0.1:{port}"], capture_output=True, timeout=30,
                           env=dict(os.environ, LD_LIBRARY_PATH=f"{d}/usr/lib"))
        eq((r.returncode, r.stdout), (0, b"seq 1\n"), f"tiny program (stderr {r.stderr!r})")
    finally:
        b.stop()


run([test_install_uninstall])
