"""deploy/man/: the man pages the .deb installs format without a groff
warning, and name every option the program's --help lists (for ringcast
itself the command-line options; its configuration keys are documented by
--help and ringcast.ini, which the page points to)."""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from rctest import BUILD, ROOT, check, eq, run  # noqa: E402

MAN = os.path.join(ROOT, "deploy", "man")
PAGES = ["ringcast", "ringcast-pub", "ringcast-sub", "ringcast-bench"]


def page_text(name):
    with open(os.path.join(MAN, name + ".1")) as f:
        return f.read().replace("\\-", "-")


def help_options(name):
    r = subprocess.run([os.path.join(BUILD, name), "--help"], capture_output=True, timeout=30)
    text = (r.stdout + r.stderr).decode()
    return sorted(set(re.findall(r"(--[a-z][a-z0-9-]*[a-z0-9])", text)))


def test_pages_format_cleanly():
    if not shutil.which("groff"):
        print("skip: groff not installed (groff-base)")
        return
    for name in PAGES:
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z",
                            os.path.join(MAN, name + ".1")], capture_output=True, timeout=30)
        eq((r.returncode, r.stderr.decode()), (0, ""), f"groff warnings for {name}.1")


def test_pages_name_every_option():
    for name in PAGES[1:]:
        text = page_text(name)
        missing = [o for o in help_options(name) if o not in text]
        eq(missing, [], f"options of {name} --help missing from {name}.1")
    text = page_text("ringcast")
    keys = set(help_options("ringcast"))
    for o in ("--config", "--listen", "--threads", "--auth", "--check-config", "--help",
              "--version"):
        check(o in keys, f"ringcast --help lists {o}")
        check(o in text, f"ringcast.1 names {o}")


if __name__ == "__main__":
    run([test_pages_format_cleanly, test_pages_name_every_option])
