"""Benchmark: what the HTTP action API (``ghl-connector api``) adds to an action call, and
how many calls per second it serves to 8 concurrent clients.

Run: ``python bench/bench_api.py [--calls N] [--seconds S]``

1. Starts the GHL sandbox and ``ghl-connector api`` as separate processes on loopback (a
   fresh state file: the sandbox's private token as the default connection, one API key).
2. Calls ``ghl.contacts.get`` through the runtime directly and through the API
   (``POST /v1/actions/ghl.contacts.get``), interleaved in batches so all see the same
   machine load. The added latency is the difference of the medians (goal: under 1 ms; the
   p90s and the ratio are printed too).
   The API is called the way an automation platform calls it: over one keep-alive
   connection of a lean native client (the standard library's ``http.client`` here; Zapier,
   n8n and Make call from Node's, Power Automate from .NET's). The same calls through an
   httpx client are timed too: httpx is pure Python and its own work per request (about
   0.4 ms on a 2-CPU machine) is the client's, not the API's, but it is shown beside.
   The CPU time each call costs the API process (read from /proc) is printed next to the CPU
   time of the direct runtime call: on a loaded machine the wall-clock difference is partly
   the wait for the API process to be scheduled, the CPU difference is its work.
3. 8 threads, each with its own keep-alive connection, call ``ghl.contacts.get`` through the
   API for ``--seconds``: actions per second, and the median and p90 latency under that load.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_runtime import start_sandbox  # noqa: E402

from connector.auth.bearer import StaticBearer  # noqa: E402
from connector.catalog import build_catalog  # noqa: E402
from connector.hookspecs import RateLimit  # noqa: E402
from connector.runtime import Runtime, Settings  # noqa: E402

ACTION = "ghl.contacts.get"
CLIENTS = 8


def start_api(home: str, base_url: str, token: str, location: str
              ) -> tuple[subprocess.Popen[str], str, str]:
    """The API in its own process over a fresh state file: (process, URL, API key)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")},
           "CONNECTOR_HOME": home, "BENCH_GHL_TOKEN": token}
    run = [sys.executable, "-m", "connector"]
    subprocess.run([*run, "auth", "set-token", "default", "--token-env", "BENCH_GHL_TOKEN",
                    "--location-id", location, "--base-url", base_url],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    key = subprocess.run([*run, "api", "keys", "create", "bench"], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout.strip()
    proc = subprocess.Popen([*run, "api", "--port", "0", "--rate-limit", "1000000/10"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("api: listening on "):
        proc.kill()
        raise SystemExit(f"the API did not start: {line!r}")
    return proc, line.split()[3], key


class LeanClient:
    """One keep-alive connection of the standard library's ``http.client``, posting JSON."""

    def __init__(self, url: str, key: str) -> None:
        host, _, port = url.split("//", 1)[1].rstrip("/").rpartition(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def post(self, path: str, data: dict[str, object]) -> tuple[int, bytes]:
        self.connection.request("POST", path, json.dumps(data), self.headers)
        answer = self.connection.getresponse()
        return answer.status, answer.read()

    def close(self) -> None:
        self.connection.close()


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process used so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def p90_us(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=10)[-1] * 1e6


def latency(api: subprocess.Popen[str], api_url: str, key: str, base_url: str, token: str,
            location: str, calls: int
            ) -> tuple[list[float], list[float], list[float], float, float]:
    """Seconds per call: (runtime direct, through the API with a lean client, through the API
    with httpx), then CPU per call in microseconds: (the runtime in this process, the API
    process on the lean client's calls)."""
    catalog = build_catalog()
    settings = Settings(base_urls={"ghl": base_url}, location_id=location,
                        rate_limits={"ghl": RateLimit(1_000_000, 10)})
    bearer = StaticBearer(token)
    path = f"/v1/actions/{ACTION}"
    lean = LeanClient(api_url, key)
    with Runtime(catalog, settings, auth=lambda app, action: bearer) as runtime, \
            httpx.Client(base_url=api_url, headers={"X-API-Key": key}, timeout=30) as client:
        found = runtime.call("ghl.contacts.search", {"pageLimit": 1})
        data = {"contactId": found["contacts"][0]["id"]}
        for _ in range(50):  # warm: pools, validators, caches, the API's runtime
            runtime.call(ACTION, data)
            assert lean.post(path, data)[0] == 200
            client.post(path, json=data).raise_for_status()
        direct: list[float] = []
        through: list[float] = []
        through_httpx: list[float] = []
        runtime_cpu = api_cpu = 0.0
        batch = 50
        for _ in range(max(1, calls // batch)):
            c0 = time.process_time()
            for _ in range(batch):
                t0 = time.perf_counter()
                runtime.call(ACTION, data)
                direct.append(time.perf_counter() - t0)
            runtime_cpu += time.process_time() - c0
            c0 = cpu_seconds(api.pid)
            for _ in range(batch):
                t0 = time.perf_counter()
                status, _ = lean.post(path, data)
                through.append(time.perf_counter() - t0)
                assert status == 200
            api_cpu += cpu_seconds(api.pid) - c0
            for _ in range(batch):
                t0 = time.perf_counter()
                answer = client.post(path, json=data)
                through_httpx.append(time.perf_counter() - t0)
                answer.raise_for_status()
    lean.close()
    per = 1e6 / len(direct)
    return direct, through, through_httpx, runtime_cpu * per, api_cpu * per


def throughput(api_url: str, key: str, contact_id: str, seconds: float
               ) -> tuple[float, float, float, int]:
    """8 clients for ``seconds``: (actions per second, median and p90 latency in us,
    errors)."""
    stop = threading.Event()
    times: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS

    def client(index: int) -> None:
        lean = LeanClient(api_url, key)
        while not stop.is_set():
            t0 = time.perf_counter()
            status, _ = lean.post(f"/v1/actions/{ACTION}", {"contactId": contact_id})
            times[index].append(time.perf_counter() - t0)
            if status != 200:
                errors[index] += 1
        lean.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = [t for each in times for t in each]
    return len(every) / elapsed, median_us(every), p90_us(every), sum(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="calls of each kind (1000)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="length of the 8-client run (10)")
    args = parser.parse_args()
    sandbox, base_url, token, location = start_sandbox()
    api = None
    try:
        with tempfile.TemporaryDirectory(prefix="bench-api-") as home:
            api, api_url, key = start_api(home, base_url, token, location)
            direct_s, through_s, httpx_s, runtime_cpu, api_cpu = latency(
                api, api_url, key, base_url, token, location, args.calls)
            lean = LeanClient(api_url, key)
            found = json.loads(lean.post("/v1/actions/ghl.contacts.search", {"pageLimit": 1})[1])
            lean.close()
            contact_id = found["contacts"][0]["id"]
            rate, loaded, loaded_p90, errors = throughput(api_url, key, contact_id, args.seconds)
    finally:
        if api is not None:
            api.terminate()
            api.wait(10)
        sandbox.terminate()
        sandbox.wait(10)
    direct, through, via_httpx = median_us(direct_s), median_us(through_s), median_us(httpx_s)
    added = through - direct
    print(f"{ACTION} via the runtime directly : median {direct:8.1f} us, p90"
          f" {p90_us(direct_s):8.1f} us per call")
    print(f"{ACTION} through the API          : median {through:8.1f} us, p90"
          f" {p90_us(through_s):8.1f} us per call (ratio {through / direct:.2f}x; a lean"
          " keep-alive client)")
    print(f"added by the API (median)             : {added:8.1f} us   (goal < 1000 us) "
          f"{'OK' if added < 1000 else 'MISSED'};  p90 difference"
          f" {p90_us(through_s) - p90_us(direct_s):.1f} us")
    print(f"  the same calls from an httpx client : median {via_httpx:8.1f} us, added"
          f" {via_httpx - direct:.1f} us (httpx's own work per request included:"
          f" ~{via_httpx - through:.0f} us more than the lean client)")
    print(f"CPU per call: the runtime {runtime_cpu:.0f} us (this process), the API process"
          f" {api_cpu:.0f} us (its runtime call included): the API's own share"
          f" ~{api_cpu - runtime_cpu:.0f} us")
    print(f"{CLIENTS} concurrent clients, {args.seconds:g} s    : {rate:8.1f} actions/s, median"
          f" {loaded:.0f} us, p90 {loaded_p90:.0f} us, {errors} errors")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"(cpu count {os.cpu_count()}, load average {load}, python"
          f" {sys.version.split()[0]}; the sandbox, the API and the clients share the machine)")


if __name__ == "__main__":
    main()
