#!/usr/bin/env python3
"""Runs amqp091-go's test binary one test per process and writes the verdicts as JSON.

Called by run.sh (which builds the binary); see the header of run.sh for usage. Standard
library only. Exit 0 when the suite ran; 2 with a one-line reason when the broker URL does not
answer or the binary cannot list its tests.
"""
import argparse
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

STATUSES = ("pass", "fail", "skip", "timeout", "panic")


def die(msg):
    print(f"amqp091-go: {msg}", file=sys.stderr)
    sys.exit(2)


def redact(url):
    """The URL without its password, for the report."""
    try:
        u = urlsplit(url)
        if u.password is None:
            return url
        host = u.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{u.username}:***@{host}" + (f":{u.port}" if u.port else "")
        return urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))
    except ValueError:
        return "<unparsable URL>"


def probe(url, wait=5.0):
    """None when url answers the AMQP 0-9-1 protocol header with a frame, else why not."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as e:
        return f"bad broker URL: {e}"
    if u.scheme not in ("amqp", "amqps") or not u.hostname:
        return f"bad broker URL {redact(url)!r}: want amqp://user:pass@host:port/vhost"
    port = port or (5671 if u.scheme == "amqps" else 5672)
    where = f"{u.hostname}:{port}"
    try:
        sock = socket.create_connection((u.hostname, port), timeout=wait)
    except OSError as e:
        return f"broker URL does not answer: cannot connect to {where}: {e}"
    try:
        sock.settimeout(wait)
        if u.scheme == "amqps":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # a liveness probe only; the tests do their own TLS
            sock = ctx.wrap_socket(sock, server_hostname=u.hostname)
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        got = b""
        while len(got) < 8:
            chunk = sock.recv(8 - len(got))
            if not chunk:
                break
            got += chunk
    except OSError as e:
        return f"broker URL does not answer AMQP at {where}: {e}"
    finally:
        sock.close()
    if got[:1] == b"\x01":
        return None
    if got[:4] == b"AMQP":
        return f"broker at {where} refused AMQP 0-9-1 (it offers protocol header {got[:8]!r})"
    return f"broker URL does not answer AMQP at {where} (got {got!r})"


def load_assumptions(path):
    if not os.path.exists(path):
        return {}
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            print("amqp091-go: warning: no tomllib (Python < 3.11): assumptions.toml ignored",
                  file=sys.stderr)
            return {}
    with open(path, "rb") as f:
        return tomllib.load(f)


def source_map(src):
    """{name: {file, line, tagged}} for every Test/Example func in the client's _test.go files,
    and the set of files that read AMQP_URL."""
    funcs, env_files = {}, set()
    for fn in sorted(os.listdir(src)):
        if not fn.endswith("_test.go"):
            continue
        with open(os.path.join(src, fn), encoding="utf-8", errors="replace") as f:
            text = f.read()
        tagged = bool(re.search(r"^//go:build\s.*\bintegration\b", text, re.M))
        if "AMQP_URL" in text:
            env_files.add(fn)
        for m in re.finditer(r"^func ((?:Test|Example)\w*)\(", text, re.M):
            funcs[m.group(1)] = {"file": fn, "line": text.count("\n", 0, m.start()) + 1,
                                 "tagged": tagged}
    return funcs, env_files


def list_tests(binary, src, env):
    try:
        p = subprocess.run([binary, "-test.list", ".*"], cwd=src, env=env, capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        die(f"could not list the tests of {binary}: {e}")
    if p.returncode != 0:
        die(f"could not list the tests of {binary}: exit {p.returncode}: "
            f"{(p.stderr or p.stdout).strip().splitlines()[-1:]}")
    return [ln.strip() for ln in p.stdout.splitlines() if re.fullmatch(r"(Test|Example)\w*", ln.strip())]


FILELINE = re.compile(r"^(\s+)\S+\.go:\d+: ")


def reason_before(lines, stop):
    """The last t.Log/t.Fatal line (with its continuation lines) before index stop."""
    for i in range(stop - 1, -1, -1):
        m = FILELINE.match(lines[i])
        if m:
            out = [lines[i].strip()]
            for ln in lines[i + 1:stop]:
                if ln.startswith(m.group(1) + " ") and not FILELINE.match(ln):
                    out.append(ln.strip())
                else:
                    break
            return " ".join(out)
        if lines[i].startswith("=== RUN"):
            break
    return None


def classify(name, out, rc, killed, limit):
    """(status, reason) from a test process's combined output and exit code."""
    lines = out.splitlines()
    verdict_re = re.compile(r"^--- (PASS|FAIL|SKIP): " + re.escape(name) + r" \(")
    vidx, verdict = None, None
    for i, ln in enumerate(lines):
        m = verdict_re.match(ln)
        if m:
            vidx, verdict = i, m.group(1)
    panic = next((ln for ln in lines if ln.startswith("panic: ")), None)
    if killed:
        return "timeout", f"no exit within {limit}s plus grace: killed by the outer timeout"
    if panic and panic.startswith("panic: test timed out after"):
        running = next((lines[i + 1].strip() for i, ln in enumerate(lines)
                        if ln.startswith("running tests:") and i + 1 < len(lines)), None)
        return "timeout", panic[len("panic: "):] + (f" ({running})" if running else "")
    if panic:
        return "panic", panic[len("panic: "):][:500]
    if verdict == "SKIP":
        return "skip", reason_before(lines, vidx)
    if verdict == "PASS" and rc == 0:
        return "pass", None
    if verdict == "PASS":
        leak = next((i for i, ln in enumerate(lines) if ln.startswith("goleak:")), None)
        if leak is not None:
            first = next((ln.strip() for ln in lines[leak + 1:] if ln.strip()), "")
            return "fail", f"passed, then goleak found leaked goroutines: {first}"[:500]
        return "fail", f"reported PASS but exited {rc}: {lines[-1] if lines else ''}"[:500]
    if verdict == "FAIL":
        why = reason_before(lines, vidx)
        if why is None:  # an Example: the got/want diff follows the verdict line
            why = " | ".join(ln.strip() for ln in lines[vidx + 1:vidx + 12]
                             if ln.strip() and ln.strip() not in ("FAIL",))
        return "fail", (why or f"exit {rc}")[:500]
    if rc == 0 and "no tests to run" in out:
        return "fail", "the binary found no test of that name"
    return "fail", f"exit {rc} with no verdict line: {lines[-1] if lines else '(no output)'}"[:500]


def restart_broker(cmd, url, wait=60.0):
    """Run the broker's restart command, then wait (at most `wait` s) until url answers AMQP.
    None when it does, else why not."""
    try:
        done = subprocess.run(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        return f"restart command {cmd!r} did not finish within 180 s"
    if done.returncode != 0:
        last = (done.stderr or "").strip().splitlines()[-1:] or [""]
        return f"restart command {cmd!r} failed (exit {done.returncode}): {last[0]}"
    deadline = time.monotonic() + wait
    while True:
        why = probe(url)
        if why is None:
            return None
        if time.monotonic() >= deadline:
            return f"after the restart: {why}"
        time.sleep(0.2)


def run_one(binary, src, env, name, limit, grace=15):
    cmd = [binary, "-test.run", f"^{name}$", "-test.v", "-test.count=1",
           f"-test.timeout={limit}s"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=src, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    killed = False
    try:
        raw, _ = p.communicate(timeout=limit + grace)
    except subprocess.TimeoutExpired:
        killed = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raw, _ = p.communicate()
    secs = round(time.monotonic() - t0, 3)
    out = raw.decode("utf-8", errors="replace")
    return out, p.returncode, killed, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--assumptions", required=True)
    ap.add_argument("--version", default="unknown")
    ap.add_argument("--go", default="unknown")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--tail", type=int, default=40)
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--all", action="store_true")
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("regex", nargs="?")
    a = ap.parse_args()
    # The matrix gives a target's own limit in the environment (a broker that hangs tests costs it
    # per test).
    if os.environ.get("AMQP_TEST_TIMEOUT", "").isdigit():
        a.timeout = int(os.environ["AMQP_TEST_TIMEOUT"])
    a.binary, a.src = os.path.abspath(a.binary), os.path.abspath(a.src)

    try:
        rx = re.compile(a.regex) if a.regex else None
    except re.error as e:
        die(f"bad TEST_REGEX {a.regex!r}: {e}")
    # A broker found down at the start (dispatchd now and then dies closing the last connection
    # of the run before) is restarted first when there is a restart command; the report says so.
    restarted_at_start = None
    why = probe(a.url)
    if why and os.environ.get("AMQP_RESTART_CMD"):
        print(f"amqp091-go: {why}: restarting it", file=sys.stderr, flush=True)
        restarted_at_start = why
        why = restart_broker(os.environ["AMQP_RESTART_CMD"], a.url)
    if why:
        die(why)

    env = dict(os.environ, AMQP_URL=a.url)
    for k in ("GOFLAGS", "GOTRACEBACK", "GODEBUG", "AMQP_RESTART_CMD"):
        env.pop(k, None)
    # A broker that can hang (GarageMQ deadlocks) would fail every test after the one that hung
    # it: with a restart command, the broker is restarted after each test that timed out, and the
    # tests run one at a time (a restart must not land in another test).
    restart_cmd = os.environ.get("AMQP_RESTART_CMD") or None
    if restart_cmd:
        a.jobs = 1
    names = list_tests(a.binary, a.src, env)
    funcs, env_files = source_map(a.src)
    assumptions = load_assumptions(a.assumptions)
    per_test = assumptions.get("test", {})

    def kind(n):
        info = funcs.get(n)
        if info and (info["tagged"] or (n.startswith("Example") and info["file"] in env_files)):
            return "integration"
        return "unit"

    selected = [n for n in names if (a.all or kind(n) == "integration") and (not rx or rx.search(n))]
    if not selected:
        die(f"no test matches {a.regex!r}" if rx else "the binary lists no integration test")

    # units of work: a chain's selected members run in order in one worker
    pos = {n: i for i, n in enumerate(selected)}
    in_chain = {}
    for ch in assumptions.get("chain", []):
        members = [n for n in ch.get("tests", []) if n in pos]
        for n in members:
            in_chain[n] = members
    units, seen = [], set()
    for n in selected:
        if n in seen:
            continue
        members = in_chain.get(n, [n])
        seen.update(members)
        units.append(members)

    results = {}
    lock = threading.Lock()
    done = [0]

    def work(members):
        for n in members:
            # A test that wants a reply within 100-250 ms gets more than one try: on a loaded
            # machine any broker misses such a window some of the time.
            tries = a.tries if "timing" in per_test.get(n, {}).get("needs", []) else 1
            earlier = []
            restarted = None
            down_before = None
            # A broker that died after the test before (dispatchd does now and then, closing a
            # connection) is restarted before this one runs: its failure would not be its own.
            if restart_cmd:
                gone = probe(a.url)
                if gone:
                    why = restart_broker(restart_cmd, a.url)
                    down_before = f"{gone}; restarted before the test" + (f" ({why})" if why else "")
            while True:
                out, rc, killed, secs = run_one(a.binary, a.src, env, n, a.timeout)
                status, reason = classify(n, out, rc, killed, a.timeout)
                tries -= 1
                if status in ("pass", "skip"):
                    break
                # A hang (the whole --timeout, 40 times the windows the timing tests keep) is not
                # a window missed on a loaded machine: it gets one more try, not every one.
                if status == "timeout" and earlier:
                    tries = 0
                # A broker the test hung (a timeout) or brought down (it no longer answers) is
                # restarted before anything else runs against it, another try included.
                if restart_cmd and (status == "timeout" or probe(a.url)):
                    why = restart_broker(restart_cmd, a.url)
                    restarted = why or True
                    if why:
                        print(f"  {n}: {why}", file=sys.stderr, flush=True)
                    # A test that found no broker at a dial (it died between the check above and
                    # the test) says nothing of the broker: on its first try, it gets one more.
                    elif "connect: connection refused" in out and not earlier:
                        tries = max(tries, 1)
                if tries <= 0:
                    break
                earlier.append({"status": status, "reason": reason, "seconds": secs})
            r = {"name": n, "status": status, "seconds": secs}
            if down_before:
                r["broker_down_before"] = down_before
            if earlier:
                r["earlier_attempts"] = earlier
            if restarted is not None:
                r["broker_restarted"] = restarted
            info = funcs.get(n, {})
            r.update({"file": info.get("file"), "line": info.get("line"), "kind": kind(n),
                      "exit_code": rc})
            if reason:
                r["reason"] = reason
            if status != "pass":
                r["output_tail"] = out.splitlines()[-a.tail:] if a.tail else []
            if n in per_test:
                r["assumes"] = per_test[n]
            with lock:
                results[n] = r
                done[0] += 1
                if status != "pass":
                    print(f"  [{done[0]}/{len(selected)}] {status:7} {n} ({secs}s): {reason or ''}"[:300],
                          file=sys.stderr, flush=True)

    t0 = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        # longest first would finish sooner, but submission in suite order keeps runs comparable
        list(pool.map(work, units))
    total = round(time.monotonic() - t0, 1)

    tests = [results[n] for n in selected]
    counts = {s: sum(1 for r in tests if r["status"] == s) for s in STATUSES}
    report = {
        "client": "amqp091-go",
        "client_version": a.version,
        "go": a.go,
        "broker_url": redact(a.url),
        "started_at": started,
        "seconds": total,
        "jobs": a.jobs,
        "timeout_seconds": a.timeout,
        "selection": "all" if a.all else "integration",
        "filter": a.regex,
        "summary": dict(total=len(tests), **counts),
        "tests": tests,
    }
    if restarted_at_start:
        report["broker_restarted_at_start"] = restarted_at_start
    tmp = a.out + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.replace(tmp, a.out)
    except OSError as e:
        die(f"cannot write {a.out}: {e}")
    extra = "".join(f", {counts[s]} {s}" for s in ("timeout", "panic") if counts[s])
    print(f"amqp091-go {a.version} vs {redact(a.url)}: {len(tests)} tests: {counts['pass']} pass, "
          f"{counts['fail']} fail, {counts['skip']} skip{extra} in {total}s (-j {a.jobs}) -> {a.out}")


if __name__ == "__main__":
    main()
