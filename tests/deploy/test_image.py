"""The container image (deploy/image/: a root file system made here, no
base image pulled), built and run with Debian's podman in a private store:
/healthz answers through the published port and from inside the container
(its HEALTHCHECK), the broker runs as the unprivileged user with the config
at /etc/ringcast/ringcast.ini, podman's default seccomp profile blocks
io_uring while deploy/seccomp-io_uring.json lets it run, and `podman stop`
(SIGTERM) drains: the client gets close 1001 and the container exits 0.

Slow (an image build): run by `make image-test`, not `make test`.  When the
machine cannot run containers at all (no podman, no storage driver, the OCI
runtime cannot start any container) it prints `skip:` and every reason."""
import asyncio
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "integration", "lib"))

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from rctest import BUILD, ROOT, Fail, check, eq, free_port, run, wait_until  # noqa: E402

IMAGE = "localhost/ringcast-test"
SECCOMP = os.path.join(ROOT, "deploy", "seccomp-io_uring.json")


class Podman:
    """podman with a private store under a temporary folder (removed after)."""

    def __init__(self, driver):
        self.dir = tempfile.mkdtemp(prefix="rc-podman-")
        self.opts = ["--root", os.path.join(self.dir, "root"),
                     "--runroot", os.path.join(self.dir, "run"), "--storage-driver", driver]
        self.run_opts = []

    def __call__(self, *args, timeout=120, check_rc=True):
        try:
            r = subprocess.run(["podman"] + self.opts + list(args), capture_output=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Fail(f"podman {args[0]} did not finish in {timeout}s") from None
        out = r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")
        if check_rc and r.returncode != 0:
            raise Fail(f"podman {' '.join(args)[:200]}: status {r.returncode}: {out[1][-1500:]}")
        return r.returncode, out[0], out[1]

    def cleanup(self):
        subprocess.run(["podman"] + self.opts + ["system", "reset", "--force"],
                       capture_output=True, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)


def skip(reasons):
    print("skip: the container image test cannot run on this machine:", flush=True)
    for r in reasons:
        print(f"skip:   {r}", flush=True)


def build():
    """Builds the image in the first storage driver that works; returns the
    Podman, or None after printing why none did."""
    if not shutil.which("podman"):
        skip(["podman is not installed (apt-get install podman buildah)"])
        return None
    reasons = []
    for driver in ("overlay", "vfs"):
        p = Podman(driver)
        t0 = time.monotonic()
        env = dict(os.environ, PODMAN_OPTS=" ".join(p.opts), IMAGE=IMAGE)
        r = subprocess.run([os.path.join(ROOT, "deploy", "image", "build.sh"),
                            os.path.join(BUILD, "ringcast")], capture_output=True, env=env,
                           timeout=600)
        if r.returncode == 0:
            print(f"image built with the {driver} storage driver in "
                  f"{time.monotonic() - t0:.1f}s", flush=True)
            return p
        err = r.stderr.decode(errors="replace").strip().splitlines()
        p.cleanup()
        # Our own scripts' errors are failures, never a reason to skip.
        own = [ln for ln in err if ln.startswith(("rootfs:", "build:"))]
        if own:
            raise Fail(f"deploy/image/build.sh: {own[0]}")
        reasons.append(f"build with storage driver {driver}: {err[-1] if err else r.returncode}")
    skip(reasons)
    return None


def limits():
    """--ulimit values this process may pass on: podman's defaults for root
    (nofile 1048576, nproc 4194304) exceed the hard limits of a process
    without CAP_SYS_RESOURCE, and the runtime's setrlimit then fails."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else min(nofile, 1048576)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096"]


# Each way to start a container, tried in order until one starts: podman's
# defaults; lower rlimits; runc instead of crun (crun refuses cgroup v1
# hybrid hosts with controllers in the v2 hierarchy); crun without cgroups.
ATTEMPTS = [
    ("podman's defaults", lambda: []),
    ("rlimits within this process's hard limits", limits),
    ("runc, rlimits lowered", lambda: ["--runtime", "runc"] + limits()),
    ("crun without cgroups, rlimits lowered", lambda: ["--cgroups", "disabled"] + limits()),
]


def start_runtime(p):
    """Finds podman run options that start a container here (a one-shot
    --check-config); returns them, or None after printing why none did."""
    reasons = []
    for what, opts in ATTEMPTS:
        if "runc" in opts() and not shutil.which("runc"):
            reasons.append(f"{what}: runc is not installed")
            continue
        rc, out, err = p(*(["run", "--rm"] + opts() + ["-e", "RINGCAST_AUTH=none", IMAGE,
                                                        "--check-config"]), check_rc=False)
        if rc == 0:
            print(f"containers start with: {what} {' '.join(opts())}", flush=True)
            eq("config OK" in out + err, True, f"--check-config in the image ({out}{err})")
            return opts()
        if "OCI" not in err and "runtime" not in err:
            raise Fail(f"the image's --check-config failed ({rc}): {out}{err}")
        reasons.append(f"{what}: {err.strip().splitlines()[-1]}")
    skip(reasons)
    return None


async def echo_once(port):
    async with websockets.connect(f"ws://127.0.0.1:{port}/echo", open_timeout=10,
                                  close_timeout=5, ping_interval=None) as ws:
        await ws.send("through the container")
        eq(await asyncio.wait_for(ws.recv(), 10), "through the container", "echo")


def http_ok(port):
    r = subprocess.run(["curl", "-fsS", "--max-time", "2", f"http://127.0.0.1:{port}/healthz"],
                       capture_output=True, timeout=10)
    return r.returncode == 0 and r.stdout == b"ok\n"


async def test_image_runs_healthz_and_drains():
    p = build()
    if p is None:
        return
    try:
        opts = start_runtime(p)
        if opts is None:
            return
        await check_image(p, opts)
    finally:
        p.cleanup()


async def check_image(p, opts):
    _, out, _ = p("image", "inspect", IMAGE)
    img = json.loads(out)[0]
    cfg = img["Config"]
    eq(cfg.get("User"), "10001:10001", "image user")
    eq(cfg.get("StopSignal"), "SIGTERM", "image stop signal")
    check("/healthz" in " ".join((img.get("Healthcheck") or {}).get("Test", [])),
          f"image health check on /healthz: {img.get('Healthcheck')}")
    eq(cfg.get("Cmd"), ["--config", "/etc/ringcast/ringcast.ini"], "image command")
    _, out, _ = p("image", "inspect", "--format", "{{.Size}}", IMAGE)
    print(f"image size: {int(out) / 1e6:.1f} MB", flush=True)

    # Open by default is refused: a listener beyond loopback needs an
    # access file or an explicit auth = none.
    rc, out, err = p(*(["run", "--rm"] + opts + [IMAGE]), check_rc=False)
    check(rc != 0 and "no access control is configured" in err,
          f"the image without RINGCAST_AUTH refuses to start ({rc}): {err[-500:]}")
    # podman's default seccomp profile blocks io_uring: the broker says so.
    rc, out, err = p(*(["run", "--rm"] + opts + ["-e", "RINGCAST_AUTH=none", IMAGE]),
                     check_rc=False, timeout=60)
    check(rc != 0 and "io_uring" in err,
          f"under the default seccomp profile the broker exits naming io_uring ({rc}): "
          f"{err[-500:]}")

    port = free_port()
    rc, _, err = p(*(["run", "-d", "--name", "rc", "-p", f"127.0.0.1:{port}:8080",
                      "--security-opt", f"seccomp={SECCOMP}", "-e", "RINGCAST_AUTH=none"] +
                     opts + [IMAGE]), check_rc=False)
    if rc != 0 and re.search(r"netavark|iptables|nftables|CNI|slirp4netns|pasta", err):
        skip([f"a published port (bridge network): {err.strip().splitlines()[-1]}"])
        return
    eq(rc, 0, f"podman run -d with the seccomp profile: {err[-1500:]}")
    try:
        await asyncio.to_thread(wait_until, lambda: http_ok(port), 20,
                                "/healthz through the published port")
        rc, out, err = p("healthcheck", "run", "rc", check_rc=False)
        eq(rc, 0, f"HEALTHCHECK inside the container: status ({out}{err})")
        _, out, _ = p("inspect", "--format", "{{.State.Health.Status}}", "rc")
        eq(out.strip(), "healthy", "health status after the check")
        _, out, _ = p("inspect", "--format", "{{.State.Pid}}", "rc")
        with open(f"/proc/{int(out)}/status") as f:
            uid = [ln.split()[1] for ln in f if ln.startswith("Uid:")][0]
        eq(uid, "10001", "uid the broker runs as")
        await echo_once(port)

        ws = await websockets.connect(f"ws://127.0.0.1:{port}/echo", open_timeout=10,
                                      close_timeout=5, ping_interval=None)
        t0 = time.monotonic()
        stop = asyncio.create_task(asyncio.to_thread(p, "stop", "-t", "30", "rc", timeout=60))
        try:
            await asyncio.wait_for(ws.recv(), 30)
            raise Fail("a message instead of the drain's close")
        except ConnectionClosed as e:
            eq(e.rcvd.code if e.rcvd else None, 1001, "close code on podman stop")
        await stop
        took = time.monotonic() - t0
        _, out, _ = p("inspect", "--format", "{{.State.ExitCode}}", "rc")
        eq(out.strip(), "0", "container exit status after SIGTERM (137 = killed at the timeout)")
        _, _, log = p("logs", "rc")
        check("draining" in log and "stopped" in log, f"drain in the log: {log[-800:]}")
        print(f"podman stop took {took:.1f}s", flush=True)
    finally:
        p("rm", "-f", "rc", check_rc=False)


if __name__ == "__main__":
    run([test_image_runs_healthz_and_drains], timeout=900)
