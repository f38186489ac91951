"""deploy/helm/ringcast and deploy/k8s/: the chart renders (with Go's
text/template and sprig, as Helm does: tests/deploy/helmrender), every
object passes the Kubernetes OpenAPI schemas (npm kubernetes-models), and
no field is unknown to them, and the checks a schema cannot make hold: probes and the Service name a
declared container port, selectors match the pod labels, the ConfigMap's
ringcast.ini passes the broker's own --check-config and listens on the
container port, the grace period covers preStop plus the drain, the
seccomp profile allows io_uring.  deploy/k8s/ is the chart's render; the
chart's config values are exactly the broker's keys.  A manifest broken on
purpose (a bad probe port, a wrong type, a misspelt field) must fail the
same checks."""
import copy
import os
import re
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

from rctest import BUILD, ROOT, Fail, check, eq, run  # noqa: E402

CHART = os.path.join(ROOT, "deploy", "helm", "ringcast")
K8S = os.path.join(ROOT, "deploy", "k8s")
RENDER = os.path.join(BUILD, "helmrender")
VALIDATE = os.path.join(ROOT, "tests", "deploy", "k8s_validate.mjs")


def sh(argv, timeout=300, input_=None, env=None):
    r = subprocess.run(argv, capture_output=True, timeout=timeout, input=input_,
                       env=dict(os.environ, **(env or {})))
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def renderer():
    san = ["SAN=1"] if BUILD.rstrip("/").endswith("/san") else []
    tsan = ["TSAN=1"] if BUILD.rstrip("/").endswith("/tsan") else []
    rc, out, err = sh(["make", "-s", "-C", ROOT] + san + tsan +
                      [os.path.relpath(RENDER, ROOT)], timeout=600)
    eq(rc, 0, f"make {RENDER}: {out}{err}")


def render(*args):
    rc, out, err = sh([RENDER, "--name", "ringcast"] + list(args) + [CHART])
    eq(rc, 0, f"helmrender {args}: {err}")
    return out


def schema_errors(text):
    """The OpenAPI validator's complaints about the objects in text."""
    rc, out, err = sh(["node", VALIDATE, "-"], input_=text.encode(), timeout=120)
    bad = [ln for ln in out.splitlines() if not ln.startswith("ok ")]
    if rc != 0 and not bad:
        bad = [f"validator failed ({rc}): {err[-500:]}"]
    return bad


def objects(text):
    return {d["kind"]: d for d in yaml.safe_load_all(text) if d}


def sub(labels, of):
    return all(of.get(k) == v for k, v in labels.items())


def port_ok(ref, ports):
    """A probe's or Service's port: a declared container port, by name or number."""
    if isinstance(ref, int):
        return any(p["containerPort"] == ref for p in ports)
    return any(p.get("name") == ref for p in ports)


def semantic_errors(objs):
    """What a schema cannot see; each problem one string."""
    errs = []
    dep = objs.get("Deployment")
    if not dep:
        return ["no Deployment"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"].get("labels", {})
    spec = pod["spec"]
    (c,) = spec["containers"]
    ports = c.get("ports", [])
    for p in ports:
        if not 1 <= p["containerPort"] <= 65535:
            errs.append(f"containerPort {p['containerPort']} out of range")
    for probe in ("readinessProbe", "livenessProbe"):
        pr = c.get(probe)
        if not pr:
            errs.append(f"no {probe}")
            continue
        get = pr.get("httpGet", {})
        if get.get("path") != "/healthz":
            errs.append(f"{probe} path {get.get('path')!r}, want /healthz")
        if not port_ok(get.get("port"), ports):
            errs.append(f"{probe} port {get.get('port')!r} is no container port {ports}")
    if not sub(dep["spec"]["selector"]["matchLabels"], labels):
        errs.append("the Deployment's selector does not match its pod labels")
    svc = objs.get("Service")
    if not svc:
        errs.append("no Service")
    else:
        if not sub(svc["spec"]["selector"], labels):
            errs.append("the Service's selector does not match the pod labels")
        for sp in svc["spec"]["ports"]:
            if not port_ok(sp.get("targetPort"), ports):
                errs.append(f"Service targetPort {sp.get('targetPort')!r} is no container port")
    pdb = objs.get("PodDisruptionBudget")
    if pdb and not sub(pdb["spec"]["selector"]["matchLabels"], labels):
        errs.append("the PodDisruptionBudget's selector does not match the pod labels")
    if pdb and dep["spec"].get("replicas", 1) <= pdb["spec"].get("minAvailable", 0):
        errs.append("minAvailable leaves no pod to evict: node drains would block")
    res = c.get("resources", {})
    if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory"):
        errs.append("no CPU and memory requests")
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if not pre:
        errs.append("no preStop")
    prof = spec.get("securityContext", {}).get("seccompProfile", {})
    if prof.get("type") not in ("Localhost", "Unconfined"):
        errs.append(f"seccomp {prof.get('type')}: RuntimeDefault blocks io_uring")
    cm = objs.get("ConfigMap")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    if not cm or vols.get("config", {}).get("configMap", {}).get("name") != cm["metadata"]["name"]:
        errs.append("the config volume does not name the ConfigMap")
    else:
        errs += config_errors(cm["data"]["ringcast.ini"], ports, spec, pre, c)
    return errs


def config_errors(ini, ports, spec, pre, c):
    errs = []
    with tempfile.NamedTemporaryFile("w", suffix=".ini") as f:
        f.write(ini)
        f.flush()
        env = {e["name"]: e.get("value", "") for e in c.get("env", [])}
        if env.get("RINGCAST_AUTH", "none") != "none":
            env["RINGCAST_AUTH"] = "none"  # the Secret is not here
        rc, out, err = sh([os.path.join(BUILD, "ringcast"), "--config", f.name,
                           "--check-config"], env=env, timeout=30)
    if rc != 0:
        return [f"ringcast --check-config refuses the ConfigMap: {err.strip()}"]
    listen = re.findall(r"^listen = .*:(\d+)$", out, re.M)
    if not listen or not all(port_ok(int(p), ports) for p in listen):
        errs.append(f"the broker listens on {listen}, not on a container port")
    close = int(re.search(r"^close_timeout = (\d+)", out, re.M).group(1))
    sleep = next((int(a) for a in pre if str(a).isdigit()), 0)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace < sleep + close + 5:
        errs.append(f"terminationGracePeriodSeconds {grace} < preStop {sleep} s + "
                    f"close_timeout {close} s + 5 s to flush")
    return errs


def test_chart_renders_and_validates():
    renderer()
    text = render()
    eq(schema_errors(text), [], "OpenAPI schema errors in the chart's render")
    objs = objects(text)
    eq(sorted(objs), ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"],
       "objects the chart makes")
    eq(semantic_errors(objs), [], "problems in the chart's render")


def test_chart_values_change_the_render():
    renderer()
    objs = objects(render("--set", "auth.existingSecret=ringcast-access",
                          "--set", "podDisruptionBudget.enabled=false",
                          "--set", "config.limits.max_backpressure=4M",
                          "--set", "image.tag=9.9.9", "--set", "replicaCount=3"))
    check("PodDisruptionBudget" not in objs, "podDisruptionBudget.enabled=false drops it")
    dep = objs["Deployment"]
    eq(dep["spec"]["replicas"], 3, "replicaCount")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    eq(c["image"], "localhost/ringcast:9.9.9", "image.tag")
    eq({e["name"]: e["value"] for e in c["env"]}["RINGCAST_AUTH"],
       "/etc/ringcast/access/access.ini", "RINGCAST_AUTH with a Secret")
    vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    eq(vols["access"]["secret"]["secretName"], "ringcast-access", "the access Secret volume")
    check("max_backpressure = 4M" in objs["ConfigMap"]["data"]["ringcast.ini"],
          "a config value reaches ringcast.ini")
    eq(semantic_errors(objs), [], "problems in the render with values")
    rc, _, err = sh([RENDER, "--set", "seccompProfile.localhostProfile=", CHART])
    check(rc != 0 and "localhostProfile is required" in err,
          f"a Localhost profile without its file name is refused ({rc}, {err})")


def test_broken_manifests_fail():
    renderer()
    objs = objects(render())
    bad = copy.deepcopy(objs)
    c = bad["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    c["readinessProbe"]["httpGet"]["port"] = "htp"
    errs = semantic_errors(bad)
    check(any("readinessProbe port 'htp'" in e for e in errs), f"bad probe port caught: {errs}")
    c["livenessProbe"]["httpGet"]["port"] = 9090
    check(any("livenessProbe port 9090" in e for e in semantic_errors(bad)),
          "a probe on a port nothing listens on caught")
    bad = copy.deepcopy(objs)
    bad["ConfigMap"]["data"]["ringcast.ini"] += "max_backpressure = lots\n"
    check(any("--check-config refuses" in e for e in semantic_errors(bad)),
          "a config the broker refuses caught")
    bad = copy.deepcopy(objs)
    bad["Deployment"]["spec"]["template"]["spec"]["securityContext"]["seccompProfile"] = {
        "type": "RuntimeDefault"}
    check(any("RuntimeDefault" in e for e in semantic_errors(bad)), "RuntimeDefault caught")
    bad = copy.deepcopy(objs)
    bad["Deployment"]["spec"]["replicas"] = "two"
    bad["Service"]["spec"]["ports"][0]["port"] = "eighty"
    errs = schema_errors(yaml.safe_dump_all(bad.values()))
    check(any("replicas must be integer" in e for e in errs) and
          any("Service" in e for e in errs), f"schema errors caught: {errs}")
    bad = copy.deepcopy(objs)
    c = bad["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    c["readinesProbe"] = c.pop("readinessProbe")
    errs = schema_errors(yaml.safe_dump_all(bad.values()))
    check(any("unknown field spec.template.spec.containers[0].readinesProbe" in e
              for e in errs), f"a misspelt field caught: {errs}")


def test_plain_manifests_are_the_chart():
    renderer()
    with tempfile.TemporaryDirectory() as d:
        rc, out, err = sh([os.path.join(K8S, "generate.sh"), RENDER, d])
        eq(rc, 0, f"deploy/k8s/generate.sh: {err}")
        for f in sorted(os.listdir(d)):
            with open(os.path.join(d, f)) as a, open(os.path.join(K8S, f)) as b:
                eq(b.read(), a.read(), f"deploy/k8s/{f} is the chart's render "
                   "(run make k8s-manifests)")
        eq(sorted(f for f in os.listdir(K8S) if f.endswith(".yaml")), sorted(os.listdir(d)),
           "files in deploy/k8s")
    text = "".join(open(os.path.join(K8S, f)).read() + "\n---\n"
                   for f in sorted(os.listdir(K8S)) if f.endswith(".yaml"))
    eq(schema_errors(text), [], "OpenAPI schema errors in deploy/k8s")
    eq(semantic_errors(objects(text)), [], "problems in deploy/k8s")


def test_chart_values_are_the_broker_keys():
    with open(os.path.join(CHART, "values.yaml")) as f:
        cfg = yaml.safe_load(f)["config"]
    ours = sorted(f"{s}.{k}" for s, keys in cfg.items() for k in keys)
    rc, out, err = sh([os.path.join(BUILD, "ringcast"), "--check-config"], timeout=30)
    eq(rc, 0, f"ringcast --check-config: {err}")
    keys, section = [], None
    for line in out.splitlines():
        m = re.match(r"^\[(\w+)\]$", line)
        if m:
            section = m.group(1)
        m = re.match(r"^(\w+) = ", line)
        if m and section:
            keys.append(f"{section}.{m.group(1)}")
    eq(ours, sorted(keys), "the chart's config values vs the broker's keys")


if __name__ == "__main__":
    run([test_chart_renders_and_validates, test_chart_values_change_the_render,
         test_broken_manifests_fail, test_plain_manifests_are_the_chart,
         test_chart_values_are_the_broker_keys])
