#!/usr/bin/python3
"""core/'s layering, checked on the built objects: every call (or data
reference) from one core/ file to another, found with nm (a symbol one
object leaves undefined and another defines), must go down the layer
picture in core/README.md (the block after its "layers:" marker), never
sideways or up, so no cycle can exist.  A file missing from the picture
fails too: a new file gets a place.  Prints every cross-file call.

    tests/core/check_layers.py [BUILD]      (run by make test and make unit)
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def layers():
    """{file stem: level} from core/README.md; higher levels call lower ones."""
    with open(os.path.join(ROOT, "core", "README.md")) as f:
        text = f.read()
    m = re.search(r"<!-- layers:.*?-->\n```\n(.*?)```", text, re.S)
    if not m:
        sys.exit("check_layers: core/README.md has no layer picture (<!-- layers: ... -->)")
    level = {}
    rows = [r for r in m.group(1).splitlines() if re.search(r"\w+\.c", r)]
    for i, row in enumerate(rows):
        for name in re.findall(r"(\w+)\.c", row):
            level[name] = len(rows) - i
    return level


def symbols(obj, flags):
    out = subprocess.run(["nm"] + flags + [obj], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return out.splitlines()


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    objdir = os.path.join(ROOT, build, "core")
    objs = sorted(f[:-2] for f in os.listdir(objdir) if f.endswith(".o"))
    defs, uses = {}, {}
    for o in objs:
        path = os.path.join(objdir, o + ".o")
        for line in symbols(path, ["--defined-only", "-g"]):
            parts = line.split()
            if len(parts) == 3:
                defs[parts[2]] = o
        uses[o] = {line.split()[-1] for line in symbols(path, ["-u"])}
    level = layers()
    errors = []
    for o in objs:
        if o not in level:
            errors.append(f"core/{o}.c is not in core/README.md's layer picture")
    calls = sorted({(o, defs[s], s) for o in objs for s in uses[o]
                    if s in defs and defs[s] != o})
    for src, dst, sym in calls:
        ok = level.get(src, 0) > level.get(dst, 0)
        print(f"  {src + '.c':14} -> {dst + '.c':14} {sym}{'' if ok else '   <- AGAINST THE LAYERS'}")
        if not ok:
            errors.append(f"core/{src}.c calls {sym} in core/{dst}.c: "
                          f"level {level.get(src)} may call only lower levels (not {level.get(dst)})")
    if errors:
        print("\n".join(["check_layers: FAIL"] + errors), file=sys.stderr)
        return 1
    print(f"check_layers: {len(calls)} cross-file calls in core/, all downward")
    return 0


if __name__ == "__main__":
    sys.exit(main())
