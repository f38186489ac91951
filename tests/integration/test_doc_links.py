"""The docs are true for someone with only the repository: every Markdown
link and every repository path a doc names in backquotes exists, no
tracked file points outside the repository (a sibling folder of the checkout, or design notes that
live elsewhere), and the micro benchmarks' payload is in the repository."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from rctest import BUILD, ROOT, check, eq, run  # noqa: E402

TOP = ("proto", "core", "broker", "clients", "tests", "bench", "deploy", ".ci")


def tracked():
    out = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, check=True,
                         timeout=30).stdout.decode().split("\n")
    return [f for f in out if f and "node_modules/" not in f]


def docs():
    return [f for f in tracked() if f.endswith(".md")]


def exists(doc, path):
    path = path.split("#", 1)[0].rstrip("/")
    if not path:
        return True
    here = os.path.dirname(os.path.join(ROOT, doc))
    return any(os.path.exists(os.path.normpath(os.path.join(base, path)))
               for base in (here, ROOT))


def named_paths(text):
    """Markdown link targets, and `a/b.ext`-like repository paths."""
    for m in re.finditer(r"\]\(([^)\s]+)\)", text):
        t = m.group(1)
        if not re.match(r"[a-z]+:", t) and not t.startswith("#"):
            yield t
    for m in re.finditer(r"`([^`\s]+)`", text):
        t = m.group(1).rstrip(".,:;")
        first = t.split("/", 1)[0]
        # Repository paths only: not generated folders, globs or
        # placeholders (fuzz_NAME.c, test_X.py).
        if (first in TOP and "/" in t and "node_modules" not in t and
                not re.search(r"[*{}<>$=]|NAME|FILE|\bX\b|_X\b|\bN\b", t)):
            yield t


def test_every_named_path_exists():
    missing = []
    for doc in docs():
        with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
            text = f.read()
        for p in named_paths(text):
            if not exists(doc, p):
                missing.append(f"{doc}: {p}")
    eq(missing, [], "paths named in docs that do not exist")


def test_nothing_points_outside():
    bad = []
    for f in tracked():
        if f == "tests/integration/test_doc_links.py":
            continue
        try:
            with open(os.path.join(ROOT, f), encoding="utf-8") as h:
                text = h.read()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue
        for pat in (r"\.\./shared\b", r"/work/shared", r"\bDESIGN\.md\b", r"\bSTYLE\.md\b"):
            for m in re.finditer(pat, text):
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{f}:{line}: {m.group(0)}")
    eq(bad, [], "references to files outside the repository")


def test_the_check_catches_a_missing_path():
    """The checker itself: a made-up doc naming a missing file fails it."""
    text = "See [the guide](core/NOPE.md) and `broker/nope.c`, `bench/run.sh`."
    missing = [p for p in named_paths(text) if not exists("README.md", p)]
    eq(missing, ["core/NOPE.md", "broker/nope.c"], "missing paths found")
    check(exists("README.md", "bench/run.sh"), "an existing path passes")


def test_bench_micro_needs_only_the_repo():
    """build/bench-micro finds its payload (bench/data/api_index.json) from
    any working directory; it used to exit 2 without a payload file outside the checkout."""
    r = subprocess.run([os.path.abspath(os.path.join(BUILD, "bench-micro")), "--time=0.01", "--reps=1",
                        "write_github", "utf8_github"], cwd="/", capture_output=True, timeout=120)
    eq(r.returncode, 0, f"bench-micro exit ({r.stderr.decode()[-500:]})")
    check(b"github payload 2263 bytes" in r.stdout, f"banner: {r.stdout[:300]!r}")
    check(b"utf8_github" in r.stdout and b"warning" not in r.stderr, r.stderr.decode())


run([test_every_named_path_exists, test_bench_micro_needs_only_the_repo, test_nothing_points_outside,
     test_the_check_catches_a_missing_path])
