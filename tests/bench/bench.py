#!/usr/bin/env python3
"""`make bench`: ghplane against a TypeScript/Octokit peer and the runtime's floor, in one run.

Each system runs in turn on local workerd through `wrangler dev`, gets the same signed
deliveries from the same load generator (wrk) for the same time, and is measured the same
way: requests/s, p50/p99 latency, errors, and the CPU time of its workerd processes per
request (read from /proc), which removes most of the local proxy's cost from the picture.
Ratios within one run are the point; absolute numbers on a shared 2-core machine are noise.

Writes target/bench/report.json and target/bench/report.svg and prints a table. Never fails
on a number: only on a broken setup.
"""

import base64
import collections
import gzip
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("GHPLANE_SHARED_DIR", ROOT.parent / "shared"))
FIXTURES = ROOT / "tests" / "fixtures"
OUT = ROOT / "target" / "bench"
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
WARMUP = int(os.environ.get("BENCH_WARMUP_SECONDS", "4"))
CONCURRENCY = [1, 16, 64]
MINT_CONCURRENCY = [1, 16]
SECRET = "bench-secret"
APP_ID = 424242
INSTALLATION_ID = 4242
ADMIN_TOKEN = "bench-admin-token"
ENCRYPTION_KEY = "3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs="
# The mint scenario: a per-org caller of MINT_ORG asks for a coder token on one repository.
MINT_ORG = "bench-org"
MINT_REPO = "app"
MINT_INSTALLATION_ID = 5151
OIDC_KID = "bench-oidc-key"
TEST_KEY = ROOT / "crates/core/tests/fixtures/test-rsa-2048-pkcs1.pem"
FETCH_FLOOR = ROOT / "tests" / "bench" / "fetch-floor"
# BENCH_ONLY=webhook,mint (any of webhook, push, mint, audit, crypto, bundle): a focused run of those
# scenarios only, on the systems they compare. BENCH_PROFILE=1: also a V8 CPU profile of
# ghplane (tests/bench/profile.mjs over the inspector) during its webhook and mint runs at
# c=16, written to target/bench/profile-*.cpuprofile with a summary in profile-*.txt.
# BENCH_NO_BUILD=1 measures build/ as it is (e.g. a build with names for the profile).
SCENARIOS = ("webhook", "push", "mint", "audit", "crypto", "bundle")
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").replace(" ", "").split(",") if s] or list(SCENARIOS)
PROFILE = os.environ.get("BENCH_PROFILE", "") not in ("", "0")
PROFILER = ROOT / "tests" / "bench" / "profile.mjs"
ENV = dict(os.environ, WRANGLER_SEND_METRICS="false", WRANGLER_SEND_ERROR_REPORTS="false",
           NO_COLOR="1", FORCE_COLOR="0", CI="true")


def log(msg):
    print(f"bench: {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=120):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


class Wrangler:
    """`wrangler dev` in its own process group, so the whole tree can be measured and stopped."""

    def __init__(self, name, cwd, config, extra_args=()):
        self.name = name
        self.port = free_port()
        self.persist = OUT / "state" / name
        shutil.rmtree(self.persist, ignore_errors=True)
        self.log_path = OUT / f"{name}.log"
        self.log_file = open(self.log_path, "w")
        self.inspector_port = free_port()
        cmd = [str(WRANGLER), "dev", "-c", str(config), "--ip", "127.0.0.1", "--port", str(self.port),
               "--inspector-port", str(self.inspector_port), "--persist-to", str(self.persist),
               "--show-interactive-dev-session=false", *extra_args]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=ENV, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.cold_start_s = self.wait_ready()

    def wait_ready(self):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name}: wrangler dev exited; see {self.log_path}")
            try:
                # Any HTTP answer means the worker is up (the floor answers 202 to everything).
                request(self.port, "GET", "/healthz", timeout=2)
                return time.monotonic() - self.started
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{self.name}: not ready after 120 s; see {self.log_path}")

    def workerd_pids(self):
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                comm = stat[stat.index("(") + 1:stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2:].split()
                pgid = int(fields[2])
            except (OSError, ValueError):
                continue
            if pgid == self.proc.pid and comm.startswith("workerd"):
                pids.append(int(entry.name))
        return pids

    def cpu_seconds(self):
        ticks = 0
        for pid in self.workerd_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime + stime
            except OSError:
                pass
        return ticks / os.sysconf("SC_CLK_TCK")

    def output(self):
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log_file.close()


WRK_SCRIPT = r"""
local counter = 0
local threads = 0
local body_file = os.getenv("BENCH_BODY")
local f = io.open(body_file, "rb")
local body = f:read("*a")
f:close()
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("%s-%d-%d", os.getenv("BENCH_RUN"), tid or 0, counter)
  return wrk.format("POST", "/webhooks/github", nil, body)
end
"""


def wrk(system, body_path, signature, concurrency, duration, event="issues", profile=None):
    script = OUT / "deliveries.lua"
    script.write_text(WRK_SCRIPT)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": str(APP_ID),
        "X-Hub-Signature-256": signature,
    }
    return run_wrk(system, "/webhooks/github", script, headers, body_path, concurrency, duration,
                   f"{body_path.stem}-c{concurrency}", profile=profile, BENCH_RUN=uuid.uuid4().hex[:12])


def run_wrk(system, path, script, headers, body_path, concurrency, duration, label, profile=None, **env):
    """wrk against `system` with `script` (which reads BENCH_BODY), and the CPU its workerd
    processes spent meanwhile. With `profile` (a name), a CPU profile of the same run."""
    args = ["wrk", "-t", str(min(concurrency, 2)), "-c", str(concurrency), "-d", f"{duration}s", "--latency",
            "-s", str(script)]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    args.append(f"http://127.0.0.1:{system.port}{path}")
    profiler = None
    if profile:
        # Started first, stopped by itself a little before wrk ends: the profile covers load only.
        profiler = subprocess.Popen(
            ["node", str(PROFILER), "--port", str(system.inspector_port), "--seconds", str(max(duration - 1, 1)),
             "--out", str(OUT / f"profile-{profile}.cpuprofile")],
            stdout=open(OUT / f"profile-{profile}.txt", "w"), stderr=subprocess.STDOUT, env=ENV)
        time.sleep(0.5)
    cpu_before = system.cpu_seconds()
    out = subprocess.run(args, env=dict(ENV, BENCH_BODY=str(body_path), **env), capture_output=True, text=True,
                         check=True).stdout
    cpu = system.cpu_seconds() - cpu_before
    if profiler is not None:
        profiler.wait(timeout=60)
        log(f"profile of {profile}: {OUT / f'profile-{profile}.txt'}")
    (OUT / f"wrk-{system.name}-{label}.txt").write_text(out)
    return parse_wrk(out, cpu)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rest_example(operations, operation_id, status):
    return json.loads(json.dumps(operations[operation_id]["responses"][status]["examples"]["default"]))


class FakeGithub:
    """The only fake in the bench, as in the tests: GitHub's two mint operations, answered with
    the examples of tests/fixtures/github-rest-operations.json, and a GitHub Actions OIDC
    issuer (discovery and key set). Counts every call so the report can say how many GitHub
    calls a warm mint makes."""

    def __init__(self):
        operations = json.loads((FIXTURES / "github-rest-operations.json").read_text())["operations"]
        installation = rest_example(operations, "apps/get-repo-installation", "200")
        installation["id"] = MINT_INSTALLATION_ID
        installation["account"]["login"] = MINT_ORG
        token = rest_example(operations, "apps/create-installation-access-token", "201")
        modulus = subprocess.run(["openssl", "rsa", "-noout", "-modulus", "-in", str(TEST_KEY)],
                                 capture_output=True, text=True, check=True).stdout.strip().split("=", 1)[1]
        jwk = {"kty": "RSA", "kid": OIDC_KID, "use": "sig", "alg": "RS256",
               "n": b64url(bytes.fromhex(modulus)), "e": b64url(b"\x01\x00\x01")}
        self.calls = collections.Counter()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: without this, Nagle's algorithm and delayed ACKs
            # add 40 ms to every answer, which would be charged to the worker.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                issuer = f"{fake.base}/_oidc"
                if self.path == "/_oidc/.well-known/openid-configuration":
                    fake.calls["oidc discovery"] += 1
                    return self.reply(200, {"issuer": issuer, "jwks_uri": f"{issuer}/.well-known/jwks"})
                if self.path == "/_oidc/.well-known/jwks":
                    fake.calls["oidc jwks"] += 1
                    return self.reply(200, {"keys": [jwk]})
                if re.fullmatch(rf"/repos/{MINT_ORG}/[^/]+/installation", self.path):
                    fake.calls["GET /repos/{owner}/{repo}/installation"] += 1
                    return self.reply(200, installation)
                self.reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path != f"/app/installations/{MINT_INSTALLATION_ID}/access_tokens":
                    return self.reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
                fake.calls["POST /app/installations/{id}/access_tokens"] += 1
                answer = dict(token)
                answer["token"] = "ghs_" + uuid.uuid4().hex
                answer["expires_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
                answer["permissions"] = body.get("permissions", {})
                repo = token["repositories"][0]
                answer["repositories"] = [dict(repo, name=r, full_name=f"{MINT_ORG}/{r}")
                                          for r in body.get("repositories", [])]
                self.reply(201, answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        return dict(self.calls)

    def latency(self, n=300):
        """The fake's own round trip for a token request, as the worker sees it at best."""
        samples = []
        body = json.dumps({"permissions": {"contents": "write"}, "repositories": [MINT_REPO]})
        port = self.server.server_address[1]
        for _ in range(n):
            started = time.monotonic()
            request(port, "POST", f"/app/installations/{MINT_INSTALLATION_ID}/access_tokens", body,
                    {"Content-Type": "application/json"})
            samples.append((time.monotonic() - started) * 1000)
        self.calls["POST /app/installations/{id}/access_tokens"] -= n
        samples.sort()
        return {"p50_ms": samples[n // 2], "p99_ms": samples[int(n * 0.99) - 1]}


def oidc_token(issuer, org=MINT_ORG):
    """A GitHub Actions ID token for a job of `org`/MINT_REPO running its `.fullsend` workflow."""
    now = int(time.time())
    repo = f"{org}/{MINT_REPO}"
    claims = {"jti": uuid.uuid4().hex, "sub": f"repo:{repo}:ref:refs/heads/main", "aud": "fullsend-mint",
              "ref": "refs/heads/main", "repository": repo, "repository_owner": org,
              "repository_id": "42", "repository_owner_id": "7", "run_id": "1", "run_attempt": "1",
              "actor": "octocat", "workflow_ref": f"{repo}/.github/workflows/agent.yml@refs/heads/main",
              "job_workflow_ref": f"{org}/.fullsend/.github/workflows/code.yml@refs/heads/main",
              "event_name": "issues", "iss": issuer, "nbf": now - 5, "iat": now - 5, "exp": now + 3 * 3600}
    header = {"alg": "RS256", "typ": "JWT", "kid": OIDC_KID}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(TEST_KEY)], input=signing_input.encode(),
                               capture_output=True, check=True).stdout
    return f"{signing_input}.{b64url(signature)}"


MINT_WRK_SCRIPT = r"""
local f = io.open(os.getenv("BENCH_BODY"), "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
"""


def wrk_mint(system, jwt, concurrency, duration, profile=None):
    script = OUT / "mint.lua"
    script.write_text(MINT_WRK_SCRIPT)
    body_path = OUT / "mint-request.json"
    body_path.write_text(json.dumps({"role": "coder", "repos": [MINT_REPO]}))
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {jwt}"}
    return run_wrk(system, "/v1/token", script, headers, body_path, concurrency, duration, f"mint-c{concurrency}",
                   profile=profile)


def cold_mint(system, fake, jwt):
    """The first mint after the worker starts (its isolate is up: the readiness probe answered):
    OIDC discovery and key set, the installation lookup, the App JWT and the token, end to end."""
    body = json.dumps({"role": "coder", "repos": [MINT_REPO]})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {jwt}"}
    before, cpu_before = fake.snapshot(), system.cpu_seconds()
    started = time.monotonic()
    status, answer = request(system.port, "POST", "/v1/token", body, headers)
    latency = (time.monotonic() - started) * 1000
    cpu = system.cpu_seconds() - cpu_before
    if status != 200:
        raise SystemExit(f"bench: the cold mint failed with {status}: {answer[:300]!r}")
    after = fake.snapshot()
    # The second mint, timed the same way, is the warm baseline of the same moment.
    started = time.monotonic()
    request(system.port, "POST", "/v1/token", body, headers)
    second = (time.monotonic() - started) * 1000
    return {"latency_ms": round(latency, 1), "cpu_ms": round(cpu * 1000, 1), "second_mint_latency_ms": round(second, 1),
            "github_calls": {k: after.get(k, 0) - before.get(k, 0) for k in after
                             if after.get(k, 0) != before.get(k, 0)}}


def mint_scenario(system, fake, jwt):
    """Warm mints: one mint first (it looks the installation up and fetches the key set), then
    measured mints, each of which should cost GitHub exactly one call."""
    if fake is not None:
        status, body = request(system.port, "POST", "/v1/token", json.dumps({"role": "coder", "repos": [MINT_REPO]}),
                               {"Content-Type": "application/json", "Authorization": f"Bearer {jwt}"})
        if status != 200:
            raise SystemExit(f"bench: the first mint failed with {status}: {body[:300]!r}")
    wrk_mint(system, jwt, 4, WARMUP)
    result = {}
    for c in MINT_CONCURRENCY:
        log(f"{system.name}: warm mints at concurrency {c} for {DURATION} s")
        before = fake.snapshot() if fake else {}
        result[str(c)] = wrk_mint(system, jwt, c, DURATION)
        if fake is not None:
            after = fake.snapshot()
            n = result[str(c)]["requests"] or 1
            result[str(c)]["github_calls_per_mint"] = {
                k: round((after.get(k, 0) - before.get(k, 0)) / n, 3) for k in after
                if after.get(k, 0) != before.get(k, 0)}
    if PROFILE and system.name == "ghplane":
        # A run of its own: the sampling profiler costs CPU, which must not count.
        log("ghplane: profiling warm mints at concurrency 16")
        wrk_mint(system, jwt, 16, DURATION, profile="mint")
    return result


# The audit shards' scenario: verified callers of organisations that are not enrolled, so
# each request is refused after its token verified and writes exactly one audit row (and
# makes no GitHub call): a load on the audit's write path, through the real mint route.
AUDIT_SLOTS = 8  # ghplane_core::mint::audit_shard::SLOTS
AUDIT_CONCURRENCY = 32

AUDIT_WRK_SCRIPT = r"""
local f = io.open(os.getenv("BENCH_BODY"), "rb")
local body = f:read("*a")
f:close()
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local i = math.random(#tokens)
request = function()
  i = i % #tokens + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer " .. tokens[i]}, body)
end
"""


def audit_slot(org):
    """The audit shard slot of `org`, as ghplane_core::mint::audit_shard::slot_of_org."""
    h = 0xcbf29ce484222325
    for b in org.lower().encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h % AUDIT_SLOTS


def audit_orgs(n=8):
    """`n` organisations on `n` different shards (names chosen for it: eight random names
    land on about five of the eight slots)."""
    orgs, slots = [], set()
    for k in range(10_000):
        org = f"bench-audit-{k}"
        if audit_slot(org) not in slots:
            orgs.append(org)
            slots.add(audit_slot(org))
        if len(orgs) == n:
            return orgs
    raise SystemExit("bench: no organisations for the audit scenario")


def audit_rows(port):
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    status, body = request(port, "GET", "/api/mint/audit/stats", headers=auth)
    return json.loads(body)["records"]["rows"] if status == 200 else None


def audit_shard_scenario(system, fake):
    """Audit rows from 8 organisations at once (8 shards) against the same load from one
    organisation (every row to one object: that object's ceiling under this load)."""
    script = OUT / "audit.lua"
    script.write_text(AUDIT_WRK_SCRIPT)
    body_path = OUT / "audit-request.json"
    body_path.write_text(json.dumps({"role": "coder", "repos": [MINT_REPO]}))
    issuer = f"{fake.base}/_oidc"
    orgs = audit_orgs()
    token_sets = {"one_object": [oidc_token(issuer, orgs[0]) for _ in orgs],
                  "eight_orgs": [oidc_token(issuer, org) for org in orgs]}
    result = {"orgs": orgs, "shards": len({audit_slot(o) for o in orgs}), "concurrency": AUDIT_CONCURRENCY}
    for label, tokens in token_sets.items():
        path = OUT / f"audit-tokens-{label}.txt"
        path.write_text("\n".join(tokens) + "\n")
        status, answer = request(system.port, "POST", "/v1/token", body_path.read_bytes(),
                                 {"Content-Type": "application/json", "Authorization": f"Bearer {tokens[0]}"})
        if status != 401:
            raise SystemExit(f"bench: an audit-scenario mint answered {status}: {answer[:300]!r}")
        run_wrk(system, "/v1/token", script, {}, body_path, 4, 2, f"audit-{label}-warm", BENCH_TOKENS=str(path))
        rows_before = audit_rows(system.port)
        calls_before = sum(fake.snapshot().values())
        log(f"ghplane: audit rows ({label.replace('_', ' ')}) at concurrency {AUDIT_CONCURRENCY} for {DURATION} s")
        r = run_wrk(system, "/v1/token", script, {}, body_path, AUDIT_CONCURRENCY, DURATION, f"audit-{label}",
                    BENCH_TOKENS=str(path))
        rows_after = audit_rows(system.port)
        r["rows_written"] = (rows_after - rows_before) if None not in (rows_before, rows_after) else None
        r["github_calls"] = sum(fake.snapshot().values()) - calls_before
        result[label] = r
    one, eight = result["one_object"]["rps"], result["eight_orgs"]["rps"]
    result["sharded_over_one_object"] = eight / one if one and eight else None
    return result


def to_ms(value):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", value)
    if not m:
        return None
    n, unit = float(m.group(1)), m.group(2)
    return {"us": n / 1000, "ms": n, "s": n * 1000, "m": n * 60000}[unit]


def percentile(out, p):
    # Anchored: a thread-stats line such as "Req/Sec ... 67.50%" also contains "50%".
    m = re.search(rf"^\s+{p}%\s+(\S+)", out, re.M)
    return to_ms(m.group(1)) if m else None


def parse_wrk(out, cpu):
    # A system that answers before reading a large body (the floor) makes wrk count errors and
    # print no latency distribution: those figures are then absent, not zero.
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50, p99 = percentile(out, 50), percentile(out, 99)
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    if p50 is None:
        sys.stderr.write(out[-600:] + "\n")
    return {"requests": requests, "rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors,
            "cpu_ms_per_request": (cpu * 1000 / requests) if requests else None}


def sign(body):
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def payloads():
    issue = json.loads((FIXTURES / "github-webhooks/issues/opened.payload.json").read_bytes())
    issue["installation"] = {"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNDI0Mg=="}
    small = json.dumps(issue).encode()
    push = json.loads((FIXTURES / "github-webhooks/push/with-new-branch.payload.json").read_bytes())
    push["installation"] = {"id": INSTALLATION_ID}

    def padded(size):
        base = json.dumps(push).encode()[:-1] + b',"padding":"'
        return base + b"x" * (size - len(base) - 2) + b'"}'

    return small, padded(1024 * 1024), padded(25 * 1024 * 1024)


def install_tools():
    if not shutil.which("wrk"):
        log("installing wrk (Debian package)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "wrk"], check=True)
    peers = OUT / "peers"
    for name in ["octokit-webhooks-worker", "noop-worker"]:
        dest = peers / name
        if not (dest / "node_modules" / ".bin" / "wrangler").exists():
            log(f"installing the {name} peer (npm ci in target/bench/peers)")
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(SHARED / "peers" / name, dest)
            for p in dest.rglob("*"):
                p.chmod(p.stat().st_mode | 0o200)
            (dest / ".npmrc").write_text("omit-lockfile-registry-resolved=true\nfund=false\naudit=false\n")
            cmd = ["npm", "ci"] if (dest / "package-lock.json").exists() else ["npm", "install"]
            subprocess.run(cmd + ["--no-audit", "--no-fund", "--loglevel=error"], cwd=dest, check=True, env=ENV)
    binaryen = OUT / "tools" / "node_modules" / ".bin" / "wasm-opt"
    if not binaryen.exists() and "bundle" in ONLY:
        log("installing binaryen (npm) to measure the bundle with wasm-opt")
        (OUT / "tools").mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(OUT / "tools"), "--no-audit", "--no-fund",
                        "--loglevel=error", "binaryen@132.0.0"], check=True, env=ENV)
    return peers, binaryen


def ghplane_config(fake):
    text = (ROOT / "wrangler.jsonc").read_text()
    config = json.loads("\n".join(l for l in text.splitlines() if not l.strip().startswith("//")))
    config.pop("build", None)
    config.pop("$schema", None)
    # A copy of the build (and of the entry module next to it, as in the tree), so a rebuild
    # in the working tree cannot reload the worker mid-run.
    build = OUT / "build"
    shutil.rmtree(build, ignore_errors=True)
    shutil.copytree(ROOT / "build", build)
    (OUT / "src").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / config["main"], OUT / config["main"])
    config["main"] = str(OUT / config["main"])
    # The console's assets stay where the build put them (the config moves to target/bench).
    if "assets" in config and "directory" in config["assets"]:
        config["assets"]["directory"] = str(ROOT / config["assets"]["directory"])
    config["vars"].update({
        "ENVIRONMENT": "bench",
        "GITHUB_API_BASE": fake.base,
        "OIDC_ISSUER": f"{fake.base}/_oidc",
        "ROLE_APP_IDS": json.dumps({"coder": str(APP_ID)}),
        "ALLOWED_ROLES": "coder",
        "ALLOWED_ORGS": MINT_ORG,
        "WORKFLOW_HOST_REPOS": "bench-host/workflows",
        "ALLOWED_WORKFLOW_FILES": "code.yml",
    })
    # The bench measures the mint, not the limiter's refusals (60 a minute by default).
    for limiter in config.get("ratelimits", []):
        limiter["simple"]["limit"] = 10_000_000
    d = OUT / "ghplane"
    d.mkdir(parents=True, exist_ok=True)
    (d / "wrangler.json").write_text(json.dumps(config, indent=2))
    (d / ".dev.vars").write_text(f"ADMIN_TOKEN={ADMIN_TOKEN}\nENCRYPTION_KEY={ENCRYPTION_KEY}\n")
    return d / "wrangler.json"


def configure_ghplane(port):
    pem = (ROOT / "crates/core/tests/fixtures/test-rsa-2048-pkcs1.pem").read_text()
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    status, body = request(port, "PUT", f"/api/apps/{APP_ID}",
                           json.dumps({"privateKey": pem, "webhookSecret": SECRET}), auth)
    assert status in (200, 201), body
    config = {"appId": APP_ID, "repositories": ["Codertocat/Hello-World"],
              "permissions": {"canProcessIssues": True, "maxContainersPerHour": 100000}}
    status, body = request(port, "PUT", f"/api/installations/{INSTALLATION_ID}/config", json.dumps(config), auth)
    assert status in (200, 201), body


BUNDLE_BUDGET_GZIP = 600 * 1000


def bundle(binaryen):
    """What `wrangler deploy` uploads: its dry run's modules (the bundled entry and the wasm;
    not the source map), raw and gzip, as wrangler's own "Total Upload" line reports them too."""
    out = OUT / "deploy-dry-run"
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run([str(WRANGLER), "deploy", "--dry-run", "--env", "staging", "--outdir", str(out)],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, check=True)
    modules = sorted(f for f in out.iterdir() if f.suffix in (".js", ".mjs", ".wasm"))
    wasm = next(f for f in modules if f.suffix == ".wasm")
    js = [f for f in modules if f is not wasm]

    def size(files):
        return (sum(f.stat().st_size for f in files),
                sum(len(gzip.compress(f.read_bytes(), 9)) for f in files))

    raw, gz = size(modules)
    result = {"modules": [f.name for f in modules], "raw_bytes": raw, "gzip_bytes": gz,
              "wasm_gzip_bytes": size([wasm])[1], "budget_gzip_bytes": BUNDLE_BUDGET_GZIP}
    total = re.search(r"Total Upload: (.*)", done.stdout + done.stderr)
    result["wrangler_total_upload"] = total.group(1).strip() if total else None
    optimized = OUT / "index_bg.opt.wasm"
    done = subprocess.run([str(binaryen), "-Oz", "--all-features", str(wasm), "-o", str(optimized)],
                          capture_output=True, text=True)
    if done.returncode == 0:
        result["wasm_opt_raw_bytes"], result["wasm_opt_gzip_bytes"] = size(js + [optimized])
    else:
        result["wasm_opt_error"] = done.stderr.strip()[-300:]
    return result


def crypto():
    env = dict(ENV, CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=str(ROOT / ".tools/bin/wasm-bindgen-test-runner"))
    out = subprocess.run(["cargo", "test", "-p", "ghplane-webcrypto", "--target", "wasm32-unknown-unknown",
                          "--features", "bench", "--test", "bench", "--", "--nocapture"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    m = re.search(r"BENCH rs256_sign_ms=([\d.]+) aes_gcm_open_ms=([\d.]+)", out)
    return {"rs256_sign_ms": float(m.group(1)), "aes_gcm_open_ms": float(m.group(2)),
            "where": "Web Crypto in Node 20 (same V8/BoringSSL-class primitives as workerd)"}


def big_payload(system, body):
    signature = sign(body)
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
               "X-GitHub-Delivery": f"big-{uuid.uuid4()}", "X-Hub-Signature-256": signature,
               "X-GitHub-Hook-Installation-Target-Type": "integration",
               "X-GitHub-Hook-Installation-Target-ID": str(APP_ID)}
    started = time.monotonic()
    status, _ = request(system.port, "POST", "/webhooks/github", body, headers)
    latency = (time.monotonic() - started) * 1000
    over = "Exceeded Memory Limit" in system.output() or "memory limit" in system.output().lower()
    return {"status": status, "latency_ms": round(latency, 1), "memory_limit_exceeded": over}


def svg(report):
    systems = ["ghplane", "peer", "floor"]
    colors = {"ghplane": "#d9480f", "peer": "#1c7ed6", "floor": "#868e96"}
    metrics = [("requests/s at c=16", lambda s: report["webhook"][s]["16"]["rps"]),
               ("CPU ms/request at c=16", lambda s: report["webhook"][s]["16"]["cpu_ms_per_request"] or 0),
               ("p99 ms at c=16", lambda s: report["webhook"][s]["16"]["p99_ms"])]
    width, row = 640, 110
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{row * len(metrics) + 30}" '
             'font-family="sans-serif" font-size="12">',
             f'<text x="10" y="18" font-weight="bold">ghplane vs Octokit peer vs no-op floor (one run)</text>']
    for i, (title, get) in enumerate(metrics):
        y0 = 30 + i * row
        values = [get(s) for s in systems]
        top = max(values) or 1
        parts.append(f'<text x="10" y="{y0 + 14}">{title}</text>')
        for j, (s, v) in enumerate(zip(systems, values)):
            w = int(420 * v / top)
            y = y0 + 22 + j * 26
            parts.append(f'<text x="10" y="{y + 14}">{s}</text>')
            parts.append(f'<rect x="80" y="{y}" width="{w}" height="18" fill="{colors[s]}"/>')
            parts.append(f'<text x="{86 + w}" y="{y + 14}">{v:.2f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    peers, binaryen = install_tools()
    if os.environ.get("BENCH_NO_BUILD", "") in ("", "0"):
        log("building ghplane (make build)")
        subprocess.run(["make", "-s", "build"], cwd=ROOT, check=True)
    small, one_mb, big = payloads()
    small_path, mb_path = OUT / "issues-opened.json", OUT / "push-1mb.json"
    small_path.write_bytes(small)
    mb_path.write_bytes(one_mb)
    fake = FakeGithub()
    jwt = oidc_token(f"{fake.base}/_oidc")

    report = {"machine": {"cores": os.cpu_count(), "uname": " ".join(os.uname()), "duration_s": DURATION,
                          "loadavg_at_start": os.getloadavg(), "scenarios": ONLY},
              "webhook": {}, "push_1mb": {}, "mint": {}, "cold_start_s": {}}
    systems = {
        "ghplane": lambda: Wrangler("ghplane", ROOT, ghplane_config(fake)),
        "peer": lambda: Wrangler("peer", peers / "octokit-webhooks-worker",
                                 peers / "octokit-webhooks-worker" / "wrangler.jsonc"),
        "floor": lambda: Wrangler("floor", peers / "noop-worker", peers / "noop-worker" / "wrangler.jsonc"),
        # The mint's floor: the no-op plus the one GitHub call a warm mint must make.
        "fetch-floor": lambda: Wrangler("fetch-floor", FETCH_FLOOR, FETCH_FLOOR / "wrangler.jsonc", extra_args=[
            "--var", f"GITHUB_API_BASE:{fake.base}", "--var", f"INSTALLATION_ID:{MINT_INSTALLATION_ID}",
            "--var", f"REPO:{MINT_REPO}"]),
    }
    webhooks, pushes, mints = "webhook" in ONLY, "push" in ONLY, "mint" in ONLY
    wanted = {"ghplane": webhooks or pushes or mints or "audit" in ONLY, "peer": webhooks or pushes,
              "floor": webhooks or pushes or mints, "fetch-floor": mints}
    for name, start in systems.items():
        if not wanted[name]:
            continue
        log(f"starting {name}")
        system = start()
        try:
            report["cold_start_s"][name] = round(system.cold_start_s, 2)
            if name == "fetch-floor":
                report["mint"][name] = mint_scenario(system, fake, jwt)
                continue
            if name == "ghplane":
                configure_ghplane(system.port)
                if mints:
                    report["mint"]["cold"] = cold_mint(system, fake, jwt)
                    log(f"ghplane: cold first mint {report['mint']['cold']}")
            if webhooks or pushes:
                # Warm up so isolates, objects and caches exist, and V8 has tiered up the hot
                # wasm (its background compilation counts as workerd CPU), before measuring.
                wrk(system, small_path, sign(small), 4, WARMUP)
            if webhooks:
                report["webhook"][name] = {}
                for c in CONCURRENCY:
                    log(f"{name}: small signed deliveries at concurrency {c} for {DURATION} s")
                    report["webhook"][name][str(c)] = wrk(system, small_path, sign(small), c, DURATION)
                if PROFILE and name == "ghplane":
                    # A run of its own: the sampling profiler costs CPU, which must not count.
                    log("ghplane: profiling small signed deliveries at concurrency 16")
                    wrk(system, small_path, sign(small), 16, DURATION, profile="webhook")
            if pushes:
                log(f"{name}: 1 MB pushes at concurrency 4")
                report["push_1mb"][name] = wrk(system, mb_path, sign(one_mb), 4, DURATION, event="push")
                if PROFILE and name == "ghplane":
                    wrk(system, mb_path, sign(one_mb), 4, DURATION, event="push", profile="push")
                if name == "ghplane":
                    log("ghplane: one signed 25 MB push")
                    report["push_25mb"] = big_payload(system, big)
            if mints and name in ("ghplane", "floor"):
                # The peer has no mint; the floor answers the same requests with nothing.
                report["mint"][name] = mint_scenario(system, fake if name == "ghplane" else None, jwt)
            if "audit" in ONLY and name == "ghplane":
                report["audit_shards"] = audit_shard_scenario(system, fake)
        finally:
            system.stop()

    if webhooks:
        for c in map(str, CONCURRENCY):
            g, p, f = (report["webhook"][s][c] for s in ("ghplane", "peer", "floor"))
            report["webhook"].setdefault("ratios", {})[c] = {
                "rps_ghplane_over_peer": g["rps"] / p["rps"],
                "rps_ghplane_over_floor": g["rps"] / f["rps"],
                "cpu_above_floor_ghplane_ms": minus(g["cpu_ms_per_request"], f["cpu_ms_per_request"]),
                "cpu_above_floor_peer_ms": minus(p["cpu_ms_per_request"], f["cpu_ms_per_request"]),
            }
    if pushes:
        g, p, f = (report["push_1mb"][s] for s in ("ghplane", "peer", "floor"))
        report["push_1mb"]["cpu_above_floor_ms"] = {
            "ghplane": minus(g["cpu_ms_per_request"], f["cpu_ms_per_request"]),
            "peer": minus(p["cpu_ms_per_request"], f["cpu_ms_per_request"])}
    if mints:
        report["mint"]["fake_github_latency"] = fake.latency()
        for c in map(str, MINT_CONCURRENCY):
            g, f = report["mint"]["ghplane"][c], report["mint"]["floor"][c]
            ff = report["mint"]["fetch-floor"][c]
            report["mint"].setdefault("above_floor", {})[c] = {
                "cpu_ms_per_mint": minus(g["cpu_ms_per_request"], f["cpu_ms_per_request"]),
                "cpu_ms_of_the_github_call": minus(ff["cpu_ms_per_request"], f["cpu_ms_per_request"]),
                "cpu_ms_per_mint_above_fetch_floor": minus(g["cpu_ms_per_request"], ff["cpu_ms_per_request"]),
                "p99_over_floor_plus_fake": (g["p99_ms"] / (f["p99_ms"] + report["mint"]["fake_github_latency"]["p99_ms"])
                                             if g["p99_ms"] and f["p99_ms"] else None),
            }
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    if "crypto" in ONLY:
        log("measuring crypto")
        report["crypto"] = crypto()
    if "bundle" in ONLY:
        log("measuring the bundle")
        report["bundle"] = bundle(binaryen)

    (OUT / "report.json").write_text(json.dumps(report, indent=2))
    if "ratios" in report["webhook"]:
        (OUT / "report.svg").write_text(svg(report))
    print_table(report)


def num(v, width, prec):
    return f"{v:>{width}.{prec}f}" if isinstance(v, (int, float)) else f"{'n/a':>{width}}"


def minus(a, b):
    return a - b if a is not None and b is not None else None


def print_table(r):
    print()
    print(f"{'scenario':<28}{'system':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'CPU ms/req':>12}")

    def row(scenario, s, m):
        print(f"{scenario:<28}{s:<12}{num(m['rps'], 9, 0)}{num(m['p50_ms'], 9, 2)}{num(m['p99_ms'], 9, 2)}"
              f"{m['errors']:>8}{num(m['cpu_ms_per_request'], 12, 3)}")

    if "ratios" in r["webhook"]:
        for c in map(str, CONCURRENCY):
            for s in ("ghplane", "peer", "floor"):
                row("webhook c=" + c, s, r["webhook"][s][c])
    if "cpu_above_floor_ms" in r["push_1mb"]:
        for s in ("ghplane", "peer", "floor"):
            row("1 MB push c=4", s, r["push_1mb"][s])
    print()
    for c, ratio in r["webhook"].get("ratios", {}).items():
        print(f"c={c}: throughput ghplane/peer {ratio['rps_ghplane_over_peer']:.2f}x, ghplane/floor "
              f"{ratio['rps_ghplane_over_floor']:.2f}x; CPU above floor ghplane"
              f"{num(ratio['cpu_above_floor_ghplane_ms'], 7, 3)} ms vs peer{num(ratio['cpu_above_floor_peer_ms'], 7, 3)} ms")
    if "above_floor" in r["mint"]:
        for c in map(str, MINT_CONCURRENCY):
            for s in ("ghplane", "floor", "fetch-floor"):
                row("mint c=" + c, s, r["mint"][s][c])
        print()
        fake = r["mint"]["fake_github_latency"]
        for c, above in r["mint"]["above_floor"].items():
            calls = r["mint"]["ghplane"][c].get("github_calls_per_mint")
            print(f"mint c={c}: CPU above floor{num(above['cpu_ms_per_mint'], 7, 3)} ms per warm mint, of which the GitHub "
                  f"call alone costs the runtime{num(above['cpu_ms_of_the_github_call'], 7, 3)} ms (above the fetch floor:"
                  f"{num(above['cpu_ms_per_mint_above_fetch_floor'], 7, 3)} ms)")
            print(f"mint c={c}: p99 / (floor p99 + "
                  f"fake p99 {fake['p99_ms']:.2f} ms) ={num(above['p99_over_floor_plus_fake'], 6, 2)}x; GitHub calls per mint {calls}")
        cold = r["mint"]["cold"]
        print(f"mint cold (first mint after start, with OIDC discovery and key set): {cold['latency_ms']} ms, "
              f"{cold['cpu_ms']} ms CPU, GitHub/issuer calls {cold['github_calls']}; the second mint "
              f"{cold['second_mint_latency_ms']} ms")
    if "cpu_above_floor_ms" in r["push_1mb"]:
        above = r["push_1mb"]["cpu_above_floor_ms"]
        print(f"1 MB push: CPU above floor ghplane{num(above['ghplane'], 7, 3)} ms vs peer{num(above['peer'], 7, 3)} ms")
        big = r.get("push_25mb", {})
        print(f"25 MB push: status {big.get('status')}, {big.get('latency_ms')} ms, memory limit exceeded: "
              f"{big.get('memory_limit_exceeded')}")
    if "crypto" in r:
        print(f"crypto: RS256 sign {r['crypto']['rs256_sign_ms']:.3f} ms, AES-GCM open {r['crypto']['aes_gcm_open_ms']:.3f} ms")
    if "bundle" in r:
        b = r["bundle"]
        print(f"bundle as deployed ({' + '.join(b['modules'])}): {b['raw_bytes']} B raw, {b['gzip_bytes']} B gzip "
              f"(budget {b['budget_gzip_bytes']}); wrangler: {b['wrangler_total_upload']}; with wasm-opt -Oz: "
              f"{b.get('wasm_opt_raw_bytes', 'n/a')} B raw, {b.get('wasm_opt_gzip_bytes', 'n/a')} B gzip")
    print_audit(r.get("audit_shards"))
    print(f"cold start (wrangler dev to first answer): {r['cold_start_s']}")
    print(f"load average at start/end: {r['machine']['loadavg_at_start']} / {r['machine']['loadavg_at_end']}")
    for name in ("webhook", "push", "mint"):
        summary = OUT / f"profile-{name}.txt"
        if PROFILE and summary.exists():
            print(f"profile of ghplane, {name}: {summary} (and .cpuprofile)")
    print(f"report: {OUT / 'report.json'}, chart: {OUT / 'report.svg'}")


def print_audit(a):
    if not a:
        return
    for label in ("one_object", "eight_orgs"):
        m = a[label]
        print(f"{'audit rows ' + label.replace('_', ' '):<28}{'ghplane':<12}{num(m['rps'], 9, 0)}{num(m['p50_ms'], 9, 2)}"
              f"{num(m['p99_ms'], 9, 2)}{'(401s)':>8}{num(m['cpu_ms_per_request'], 12, 3)}"
              f"  rows written {m['rows_written']} of {m['requests']}, GitHub calls {m['github_calls']}")
    print(f"audit: {a['shards']} shards, c={a['concurrency']}: sharded throughput / one object's ceiling ="
          f"{num(a['sharded_over_one_object'], 6, 2)}x")


def audit_only():
    """`bench.py audit`: only the audit shards' scenario, on ghplane as built in build/."""
    OUT.mkdir(parents=True, exist_ok=True)
    fake = FakeGithub()
    system = Wrangler("ghplane", ROOT, ghplane_config(fake))
    try:
        configure_ghplane(system.port)
        result = audit_shard_scenario(system, fake)
    finally:
        system.stop()
    (OUT / "report-audit.json").write_text(json.dumps(result, indent=2))
    print_audit(result)


if __name__ == "__main__":
    sys.exit(audit_only() if sys.argv[1:] == ["audit"] else main())
