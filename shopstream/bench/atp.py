"""`shopstream bench atp-snapshot`: a full ERP snapshot from file to ATP in Redis and shop commands.

Starts `shopstream dev` (embedded broker and registry unless the environment names real ones), writes
a CSV export of `--skus` SKUs, and per run ingests it with `shopstream ingest erp-stock` (a child
process, as an operator would) with a new `--as-of` and a changed figure on every line, so every
line changes every SKU's ATP. It measures, from the start of the ingest:
- ingest: the file is parsed and every batch confirmed by the broker (the baseline: file → Kafka);
- atp: the inventory worker has emitted an AtpLevel for every SKU (its `/metrics`);
- redis: the views sink has written every one of them to Redis (its `/metrics`);
- shop: the shop stock sync has sent (and the broker confirmed) a SyncShopStock for every SKU.
The end-to-end figure is the latest of redis and shop. After each run the Redis view is checked for
every SKU's expected `available` (a run whose view is wrong is reported as failed, not timed).
Peak memory is each process's VmHWM (peak resident set) from /proc at the end, so it covers all runs.
Figures are printed, never asserted; the median over the runs is the headline.

`--changed-pct P` measures the daily case instead: after a first load of every SKU (timed, printed,
not in the median), each run's file is again the full export of every SKU, but only one line in
round(100/P) differs from the previous file (another residue class each run). Every line travels
(the default ingest): the ATP stage then also waits until the inventory worker has counted every
unchanged line (as `duplicate`: it only moves the SKU's as_of). With `--changed-only` the ingest
skips the unchanged lines (erp_digest.py says when that is exact). The stage counters wait for the
changed SKUs, and the Redis check still covers every SKU.

The embedded broker's one-record-per-batch workaround (SHOPSTREAM_SINGLE_RECORD_BATCHES, on in
`shopstream dev` with Tansu, see config.py) is off here unless `--single-record-batches` is given:
it makes every record a worker produces its own produce request (measured: 170 SKUs/s instead of
~3,000 on 20k SKUs), and it exists only for Tansu's offset quirk, not for Apache Kafka.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from shopstream.bench.common import BenchError, DevProcess, median, spawn_dev, work_dir
from shopstream.topology import names

_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')


def metric_total(text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels include `labels` (text exposition format)."""
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match["name"] != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(match["value"])
    return total


def _scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return ""


@dataclass
class Stages:
    ingest_s: float
    atp_s: float
    redis_s: float
    shop_s: float
    ingest_cpu_s: float = 0.0

    @property
    def total_s(self) -> float:
        return max(self.atp_s, self.redis_s, self.shop_s)


def last_change(i: int, run: int, every: int = 1) -> int:
    """The run in which line i last changed its figure (0: the first load) when one line in `every`
    changes per run, each run another residue class."""
    if every == 1:
        return run
    k = i % every
    return 0 if run < k else run - ((run - k) % every)


def write_export(path: Path, skus: int, run: int, every: int = 1, name: str = "SKU") -> None:
    """A CSV export: SKU-0000000.. whose on_hand moves with the run on the lines that change in it."""
    with path.open("w", encoding="utf-8") as out:
        out.write("sku,on_hand,safety_stock\n")
        for i in range(skus):
            out.write(f"{name}-{i:07d},{(i % 50) + 10 + last_change(i, run, every)},{i % 3}\n")


def changed_lines(skus: int, run: int, every: int = 1) -> int:
    """How many lines of the run's export differ from the previous run's (all of them in the first load)."""
    if every == 1 or run == 0:
        return skus
    k = run % every
    return len(range(k, skus, every))


def expected_available(i: int, run: int, every: int = 1) -> int:
    return (i % 50) + 10 + last_change(i, run, every) - (i % 3)


class _Stack:
    def __init__(self, dev: DevProcess) -> None:
        port = int(dev.env["SHOPSTREAM_WORKER_PORT"])
        self.dev = dev
        self.views = f"http://127.0.0.1:{port + 1}/metrics"
        self.inventory = f"http://127.0.0.1:{port + 2}/metrics"
        self.shop_sync = f"http://127.0.0.1:{port + 3}/metrics"

    def counts(self) -> tuple[float, float, float, float]:
        """AtpLevels emitted, written to Redis, shop commands sent, snapshot lines that changed nothing."""
        inventory = _scrape(self.inventory)
        atp = metric_total(inventory, "shopstream_records_out_total", topic=names.INVENTORY_ATP)
        unchanged = metric_total(inventory, "shopstream_records_in_total", topic=names.INVENTORY_STOCK,
                                 outcome="duplicate")
        views = _scrape(self.views)
        written = sum(metric_total(views, "shopstream_records_in_total", topic=topic, outcome=outcome)
                      for topic in (names.INVENTORY_ATP, self.dev.env["SHOPSTREAM_TOPIC_PREFIX"] + names.INVENTORY_ATP)
                      for outcome in ("ok", "duplicate"))
        shop = metric_total(_scrape(self.shop_sync), "shopstream_shop_sync_commands_total")
        return atp, written, shop, unchanged


def _one_run(stack: _Stack, export: Path, skus: int, run: int, timeout_s: float, every: int = 1,
             name: str = "SKU", changed_only: bool = False) -> Stages:
    write_export(export, skus, run, every, name)
    expected = changed_lines(skus, run, every)
    # Lines the worker must still get through that emit nothing (unchanged, published anyway).
    repeated = 0 if changed_only else skus - expected
    as_of = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=run)).isoformat()
    atp0, redis0, shop0, same0 = stack.counts()
    started = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    skip = ["--changed-only"] if changed_only else []
    ingest = subprocess.run([sys.executable, "-m", "shopstream.cli", "ingest", "erp-stock", str(export),
                             "--as-of", as_of, *skip], env=stack.dev.client_env(), capture_output=True, text=True)
    ingest_s = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    ingest_cpu_s = used.ru_utime + used.ru_stime - children.ru_utime - children.ru_stime
    if ingest.returncode != 0:
        raise BenchError(f"ingest failed ({ingest.returncode}): {ingest.stderr.strip()[-2000:]}")
    done: dict[str, float] = {}
    deadline = started + timeout_s
    while len(done) < 3:
        atp, written, shop, same = stack.counts()
        now = time.perf_counter() - started
        if "atp" not in done and atp - atp0 >= expected and same - same0 >= repeated:
            done["atp"] = now
        for name, value in (("redis", written - redis0), ("shop", shop - shop0)):
            if name not in done and value >= expected:
                done[name] = now
        if time.perf_counter() > deadline:
            raise BenchError(f"run {run}: not done after {timeout_s:.0f} s: {done} (atp {atp - atp0:.0f}, "
                             f"redis {written - redis0:.0f}, shop {shop - shop0:.0f} of {expected}; "
                             f"unchanged lines {same - same0:.0f} of {repeated})")
        time.sleep(0.2)
    return Stages(ingest_s, done["atp"], done["redis"], done["shop"], ingest_cpu_s)


def check_view(redis_url: str, prefix: str, skus: int, run: int, every: int = 1) -> int:
    """How many SKUs the Redis ATP view does not show with the expected `available` (0 = all right)."""
    from shopstream.views.atp import atp_key

    client = redis.Redis.from_url(redis_url)
    wrong = 0
    step = 10_000
    for start in range(0, skus, step):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(skus, start + step)):
            pipe.get(atp_key(prefix, f"SKU-{i:07d}"))
        for offset, value in enumerate(pipe.execute()):
            if value is None or json.loads(value)["available"] != expected_available(start + offset, run, every):
                wrong += 1
    return wrong


def _processes(root_pid: int) -> dict[int, str]:
    """Every process below `root_pid`: pid -> a short name from its command line."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out: dict[int, str] = {}
    todo = list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [c.decode(errors="replace") for c in cmd if c]
        out[pid] = " ".join(words[3:6]) if len(words) > 3 and words[1:3] == ["-m", "shopstream.cli"] else (
            Path(words[0]).name if words else str(pid))
    return out


def peak_memory_mb(root_pid: int) -> dict[str, float]:
    """VmHWM (peak RSS, MB) of every process below `root_pid`, by command line."""
    out: dict[str, float] = {}
    for pid, name in _processes(root_pid).items():
        try:
            match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        except OSError:
            continue
        if match:
            out[name] = int(match[1]) / 1024
    return out


def cpu_seconds(root_pid: int) -> dict[str, float]:
    """User + system CPU seconds each process below `root_pid` has used so far, by command line.

    On a shared 2-core machine wall times move with the load; a process's CPU time per run moves much
    less, so it says which stage costs what."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for pid, name in _processes(root_pid).items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / tick
    return out


def print_cpu(label: str, before: dict[str, float], after: dict[str, float], r: Stages) -> None:
    """The CPU seconds each process spent between `before` and `after`, and the ingest's."""
    used = {name: after[name] - before.get(name, 0.0) for name in sorted(after)}
    used["ingest"] = r.ingest_cpu_s
    print(f"  CPU s in {label}: " + json.dumps({k: round(v, 1) for k, v in used.items() if v >= 0.05}), flush=True)


def run_atp_bench(skus: int, runs: int, timeout_s: float, single_record_batches: bool = False,
                  changed_pct: float = 100.0, changed_only: bool = False) -> int:
    """Run the atp-snapshot benchmark and print its figures; returns the exit code."""
    failed = 0
    every = max(1, round(100 / changed_pct))
    with work_dir("shopstream-bench-atp-") as tmp:
        token = uuid.uuid4().hex[:8]
        prefix = f"bench:{token}:"
        dev = spawn_dev(tmp, SHOPSTREAM_TOPIC_PREFIX=f"bench{token}.", SHOPSTREAM_REDIS_PREFIX=prefix,
                        SHOPSTREAM_LOG_LEVEL="WARNING",
                        SHOPSTREAM_SINGLE_RECORD_BATCHES=str(single_record_batches).lower())
        results: list[Stages] = []
        try:
            dev.wait_ready()
            stack = _Stack(dev)
            export = tmp / "stock.csv"
            print(f"SHOPSTREAM_SINGLE_RECORD_BATCHES={str(single_record_batches).lower()}; "
                  "warming up (consumer groups join, schemas register) …", flush=True)
            _one_run(stack, tmp / "warm-up.csv", 100, 0, timeout_s, name="WARMUP")  # SKUs of its own
            redis_url = dev.env.get("REDIS_URL", "redis://127.0.0.1:6379/0")

            def report(label: str, r: Stages, run: int) -> None:
                nonlocal failed
                wrong = check_view(redis_url, prefix, skus, run, every)
                status = "ok" if wrong == 0 else f"WRONG: {wrong} SKUs not as expected in Redis"
                failed += wrong != 0
                changed = changed_lines(skus, run, every)
                print(f"{label}: {skus} SKUs, {changed} changed; ingest (file→Kafka) {r.ingest_s:.1f} s, "
                      f"ATP emitted {r.atp_s:.1f} s, Redis view {r.redis_s:.1f} s, shop commands {r.shop_s:.1f} s; "
                      f"end to end {r.total_s:.1f} s = {skus / r.total_s:,.0f} SKUs/s of the file; "
                      f"view check {status}", flush=True)

            if every > 1:
                how = "only they are published (--changed-only)" if changed_only else "every line is published"
                print(f"first load of all {skus} SKUs (not in the median; later files change 1 line in {every}, "
                      f"{how}) …", flush=True)
                before = cpu_seconds(dev.process.pid)
                r = _one_run(stack, export, skus, 0, timeout_s, every)
                report("first load", r, 0)
                print_cpu("first load", before, cpu_seconds(dev.process.pid), r)
            for run in range(1, runs + 1):
                before = cpu_seconds(dev.process.pid)
                r = _one_run(stack, export, skus, run, timeout_s, every, changed_only=changed_only)
                results.append(r)
                report(f"run {run}", r, run)
                print_cpu(f"run {run}", before, cpu_seconds(dev.process.pid), r)
            memory = peak_memory_mb(dev.process.pid)
        finally:
            dev.stop()
    total = median(results, lambda r: r.total_s)
    ingest = median(results, lambda r: r.ingest_s)
    print(f"median of {runs} runs: end to end {total:.1f} s ({skus / total:,.0f} SKUs/s of the file); "
          f"baseline file→Kafka (ingest) {ingest:.1f} s (ratio {total / ingest:.1f}x); "
          f"ATP {median(results, lambda r: r.atp_s):.1f} s, "
          f"Redis {median(results, lambda r: r.redis_s):.1f} s, "
          f"shop {median(results, lambda r: r.shop_s):.1f} s")
    print("peak memory (VmHWM): " + json.dumps({k: round(v) for k, v in sorted(memory.items())}) + " MB")
    return 1 if failed else 0

