"""The Debian package (make deb): installed on this machine with
`apt-get install ./build/ringcast_*.deb`, it puts the programs, man pages,
conffile and unit in place and creates the ringcast system user; the broker
starts as the unit says (systemctl when systemd is PID 1, otherwise the
unit's ExecStartPre and ExecStart run as its User= with its config) and
answers /healthz, drains on SIGTERM; `apt-get purge` then leaves nothing:
no file of the package, no /etc/ringcast, no user, no unit state.

Slow (apt, dpkg): run by `make deb-test`, not `make test`.  Needs root
(it installs a package on this machine); skips with a reason otherwise."""
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration", "lib"))

from rctest import ROOT, Fail, Proc, check, eq, free_port, run, wait_until  # noqa: E402

UNIT = "/lib/systemd/system/ringcast.service"
APT = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q"]
ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def sh(argv, timeout=600, ok=True):
    try:
        r = subprocess.run(argv, capture_output=True, timeout=timeout, env=ENV, cwd=ROOT)
    except subprocess.TimeoutExpired:
        raise Fail(f"{' '.join(argv)} did not finish in {timeout}s") from None
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    if ok and r.returncode != 0:
        raise Fail(f"{' '.join(argv)}: status {r.returncode}: {out[-2000:]}")
    return r.returncode, out


def installed():
    rc, out = sh(["dpkg-query", "-W", "-f", "${db:Status-Status}", "ringcast"], ok=False)
    return rc == 0 and out.strip() not in ("", "not-installed")


def healthz(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200 and r.read() == b"ok\n"
    except OSError:
        return False


def unit_value(text, key):
    """Values of KEY= lines in the [Service] section, in order."""
    return re.findall(rf"^{key}=(.*)$", text, re.M)


def leftovers(files):
    """What of the package is still on disk after the purge."""
    shared = {"/", "/etc", "/lib", "/lib/systemd", "/lib/systemd/system", "/usr", "/usr/bin",
              "/usr/share", "/usr/share/doc", "/usr/share/man", "/usr/share/man/man1", "/."}
    left = [f for f in files if f not in shared and os.path.lexists(f)]
    left += glob.glob("/etc/systemd/system/*/ringcast.service")
    left += glob.glob("/var/lib/systemd/deb-systemd-helper-*/**/ringcast.service*",
                      recursive=True)
    return left


def start_like_the_unit(unit):
    """ExecStartPre, then ExecStart, as the unit's User= with its config;
    the listen address comes from RINGCAST_LISTEN as a drop-in's
    Environment= would give it (the packaged config listens on 8080)."""
    user = unit_value(unit, "User")
    eq(user, ["ringcast"], "the unit's User=")
    pw = pwd.getpwnam("ringcast")
    port = free_port()
    env = {"RINGCAST_LISTEN": f"127.0.0.1:{port}"}
    as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
               "--no-new-privs"]
    for pre in unit_value(unit, "ExecStartPre"):
        rc, out = sh(as_user + pre.split(), timeout=60, ok=False)
        eq(rc, 0, f"ExecStartPre {pre} as ringcast ({out[-1000:]})")
    (start,) = unit_value(unit, "ExecStart")
    check("--config /etc/ringcast/ringcast.ini" in start, f"ExecStart uses the config: {start}")
    p = Proc(as_user + start.split(), env=env, name="ringcast (installed)")
    wait_until(lambda: healthz(port) or not p.alive(), 15, "/healthz of the installed broker")
    check(p.alive(), f"the installed broker exited: {p.text()[-1500:]}")
    with open(f"/proc/{p.popen.pid}/status") as f:
        uid = [ln.split()[1] for ln in f if ln.startswith("Uid:")][0]
    eq(int(uid), pw.pw_uid, "uid the installed broker runs as")
    eq(unit_value(unit, "KillSignal"), ["SIGTERM"], "the unit's KillSignal")
    p.stop(signal.SIGTERM, timeout=30, expect=(0,))
    check("stopped" in p.text(), f"drained and stopped: {p.text()[-800:]}")


def start_with_systemd():
    sh(["systemctl", "restart", "ringcast.service"], timeout=60)
    wait_until(lambda: healthz(8080), 15, "/healthz of ringcast.service on 127.0.0.1:8080")
    rc, out = sh(["systemctl", "show", "-p", "User", "-p", "ActiveState", "ringcast.service"])
    check("ActiveState=active" in out and "User=ringcast" in out, f"unit state: {out}")
    sh(["systemctl", "stop", "ringcast.service"], timeout=60)
    rc, out = sh(["systemctl", "show", "-p", "Result", "ringcast.service"])
    check("Result=success" in out, f"the unit stopped cleanly (SIGTERM drain): {out}")


def test_deb_install_start_purge():
    debs = sorted(glob.glob(os.path.join(ROOT, "build", "ringcast_*.deb")))
    check(debs, "build/ringcast_*.deb exists (make deb)")
    if os.geteuid() != 0:
        print("skip: installing the .deb needs root (apt-get install on this machine)")
        return
    lint = os.path.join(ROOT, "build", "ringcast.lintian")
    if os.path.exists(lint):
        with open(lint) as f:
            errors = [ln for ln in f if ln.startswith("E: ")]
        eq(errors, [], "lintian errors")
    if installed():
        print("note: a ringcast package was installed before the test; purging it first")
        sh(APT + ["purge", "ringcast"])
    t0 = time.monotonic()
    sh(APT + ["install", "./" + os.path.relpath(debs[-1], ROOT)])
    try:
        print(f"apt-get install took {time.monotonic() - t0:.1f}s", flush=True)
        check(installed(), "ringcast installed")
        _, files = sh(["dpkg-query", "-L", "ringcast"])
        files = files.split()
        for f in ("/usr/bin/ringcast", "/usr/bin/ringcast-pub", "/usr/bin/ringcast-sub",
                  "/usr/bin/ringcast-bench", UNIT, "/etc/ringcast/ringcast.ini",
                  "/usr/share/man/man1/ringcast.1.gz", "/usr/share/man/man1/ringcast-pub.1.gz",
                  "/usr/share/man/man1/ringcast-sub.1.gz",
                  "/usr/share/man/man1/ringcast-bench.1.gz"):
            check(f in files and os.path.exists(f), f"{f} installed")
        _, conf = sh(["dpkg-query", "-W", "-f", "${Conffiles}", "ringcast"])
        check("/etc/ringcast/ringcast.ini" in conf, f"the config is a conffile: {conf!r}")
        _, ver = sh(["/usr/bin/ringcast", "--version"])
        check(re.search(r"\d+\.\d+\.\d+", ver), f"ringcast --version: {ver}")
        pw = pwd.getpwnam("ringcast")
        check(pw.pw_uid < 1000 and pw.pw_shell.endswith("nologin"),
              f"ringcast is a system user without a shell: {pw}")
        st = os.stat("/etc/ringcast/ringcast.ini")
        eq((st.st_uid, st.st_gid, oct(st.st_mode & 0o777)), (0, pw.pw_gid, "0o640"),
           "config owner, group and mode")
        with open(UNIT) as f:
            unit = f.read()
        if shutil.which("systemd-analyze"):
            # Offline checks of the installed unit: syntax, executables,
            # the Documentation= man page.
            _, out = sh(["systemd-analyze", "verify", UNIT], ok=False)
            eq([ln for ln in out.splitlines() if "ringcast" in ln], [],
               "systemd-analyze verify of the installed unit")
        if os.path.isdir("/run/systemd/system"):
            start_with_systemd()
        else:
            print("systemd is not PID 1 here: starting the unit's commands directly",
                  flush=True)
            start_like_the_unit(unit)
    finally:
        t0 = time.monotonic()
        sh(APT + ["purge", "ringcast"])
        print(f"apt-get purge took {time.monotonic() - t0:.1f}s", flush=True)
    check(not installed(), "ringcast purged")
    eq(leftovers(files), [], "files left after the purge")
    check("ringcast" not in open("/etc/passwd").read(), "the ringcast user removed")
    check(not re.search(r"^ringcast:", open("/etc/group").read(), re.M),
          "the ringcast group removed")


if __name__ == "__main__":
    run([test_deb_install_start_purge], timeout=900)
