"""The table `replay bench` prints: throughput, latency, CPU, memory, the targets with
PASS/FAIL, and Reverb's figures as a reference row.

Every ratio to "the ceiling" divides by the fastest raw Redis form measured for the
same case in the same run (raw-pipe, raw-lua or raw-hash, whichever won): a ceiling
that one of the forms beats would flatter the service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from replay_service.benchmarks.suite.payloads import ATARI, CARTPOLE, PONG
from replay_service.benchmarks.suite.plan import RAW_FORMS, Case, Subject
from replay_service.benchmarks.suite.results import DISTURBED_CORES, Measurement, Results

__all__ = ["Target", "ceiling", "render", "targets"]

PRIMARY = "st-1w"
"""The service as the targets mean it: over HTTP, safetensors, one uvicorn worker."""
SDK = "sdk-1w"
IN_PROCESS = "in-proc"
_CELL = 10


def render(results: Results) -> str:
    return "\n".join(_lines(results)) + "\n"


def _lines(results: Results) -> Iterator[str]:
    yield from _header(results)
    cases = _cases(results)
    store = [case for case in cases if case.op == "store"]
    sample = [case for case in cases if case.op == "sample"]
    if store:
        yield ""
        yield from _rate_table(results, store, "STORE: transitions stored per second")
    if sample:
        yield ""
        yield from _rate_table(results, sample, "SAMPLE: transitions sampled per second")
        yield ""
        yield from _grid(results, sample, "SAMPLE LATENCY: p50 / p99 per request, ms",
                         _latency, width=13)
    if small := _per_request_cases(cases):
        yield ""
        yield from _per_request(results, small)
    if cases:
        yield ""
        yield from _grid(results, cases, "CPU per 1k transitions, ms: service processes / "
                         "redis-server (in-process: the client)", _cpu, width=13)
    if results.memory:
        yield ""
        yield from _memory(results)
    if results.prioritized:
        yield ""
        yield from _prioritized(results)
    yield ""
    yield from _targets(results)
    yield ""
    yield from _reference(results)
    errors = [m for m in results.measurements if m.error]
    if errors:
        yield ""
        yield f"ERRORS in {len(errors)} measurements:"
        for m in errors:
            yield f"  {m.case.label} {m.subject.key}: {(m.error or '').strip().splitlines()[-1]}"


def _header(results: Results) -> Iterator[str]:
    config, env = results.config, results.environment
    mode = "quick" if config.quick else "full"
    yield (f"replay bench ({mode} mode): medians of {config.repeats} repetitions of "
           f"{config.seconds:g} s (up to {config.extra_repeats} more when disturbed or 50% "
           f"apart), "
           f"took {results.seconds:.0f} s")
    load = env.get("load_at_start", 0.0)
    yield (f"machine: {env.get('cpus')} CPUs, {env.get('memory_gb')} GB, load {load:.1f} at "
           f"start; Redis {env.get('redis_version', '?')} (redis-py "
           f"{env.get('redis_py')}, hiredis {'yes' if env.get('hiredis') else 'no'}); uvicorn "
           f"with uvloop {'yes' if env.get('uvloop') else 'no'}, httptools "
           f"{'yes' if env.get('httptools') else 'no'}")
    keys = {subject.key for subject in results.subjects}
    legend = {
        IN_PROCESS: "replay_service.trainer.local_buffer.LocalReplayBuffer in the client "
                    "process (one process; the ratios of every row compare with its one-client "
                    "figure)",
        "raw-pipe": "raw Redis, redis-py + hiredis, the service's packed segment strings: one "
                    "pipeline (a store: SETRANGE per run + INCRBY; a sample: GETRANGE per slot)",
        "raw-lua": "the same commands on the same strings in one EVALSHA of a Lua script",
        "raw-hash": "one hash holding the same records, a field per slot: a store is HSET of "
                    "the batch + INCRBY in one round trip, a sample one HMGET",
        "st-Nw/json-Nw": "the service over HTTP with N uvicorn workers, bodies encoded "
                         "beforehand, answers decoded to numpy (http.client on a kept-alive "
                         "connection, the leanest client; no idempotency key)",
        SDK: "replay_service.ReplayClient against the 1-worker service: .store_batch(wait=False), "
             "timed up to the .flush() that follows (the sender merges batches queued behind a "
             "request), and .sample",
    }
    for key, text in legend.items():
        if key in keys or (key.startswith("st-") and any(k.startswith("st-") for k in keys)):
            yield f"  {key:<14}{text}"
    yield (f"  ratios: st/ceil and sdk/ceil divide {PRIMARY} and {SDK} by the ceiling, the "
           f"fastest of {', '.join(RAW_FORMS)} in the same row of this run (named under "
           "'ceiling'); st/in-proc divides by in-proc with one client at the same batch and "
           "fill")
    yield (f"  marks: ! a repetition was disturbed (other processes used over "
           f"{DISTURBED_CORES:g} cores), ~ repetitions differ by over 30%, - not measured")


def _cases(results: Results) -> list[Case]:
    seen: dict[Case, None] = {}
    for measurement in results.measurements:
        seen.setdefault(measurement.case)
    return list(seen)


def _subjects(results: Results, cases: list[Case]) -> list[Subject]:
    present = {m.subject.key for m in results.measurements if m.case in cases}
    return [subject for subject in results.subjects if subject.key in present]


def _row_label(case: Case) -> str:
    fill = f"{case.fill:>10,}" if case.op == "sample" else ""
    return f"{case.payload:<9}{case.batch:>6}{fill}{case.clients:>8}"


def _label_header(op: str) -> str:
    fill = f"{'fill':>10}" if op == "sample" else ""
    return f"{'payload':<9}{'batch':>6}{fill}{'clients':>8}"


def _mark(measurement: Measurement) -> str:
    if measurement.error:
        return "E"
    if any(rep.disturbed for rep in measurement.quoted):
        return "!"
    return "~" if measurement.noisy else " "


def _rate(results: Results, key: str, case: Case) -> float | None:
    measurement = results.find(key, **vars(case))
    return measurement.median("rate") if measurement and not measurement.error else None


def _rate_table(results: Results, cases: list[Case], title: str) -> Iterator[str]:
    subjects = _subjects(results, cases)
    yield title + " (median)"
    yield (_label_header(cases[0].op) + "".join(f"{s.key:>{_CELL}}" for s in subjects)
           + f"{'ceiling':>10}{'st/ceil':>9}{'st/in-proc':>11}{'sdk/ceil':>9}")
    for case in cases:
        cells = ""
        for subject in subjects:
            measurement = results.find(subject.key, **vars(case))
            rate = measurement.median("rate") if measurement else None
            text = "-" if measurement is None else ("ERR" if measurement.error else _si(rate))
            cells += f"{text:>{_CELL - 1}}{_mark(measurement) if measurement else ' '}"
        alone = Case(case.op, case.payload, case.batch, 1, case.fill)
        best = ceiling(results, case)
        top = best[1] if best else None
        ratios = [_ratio(_rate(results, PRIMARY, case), top),
                  _ratio(_rate(results, PRIMARY, case), _rate(results, IN_PROCESS, alone)),
                  _ratio(_rate(results, SDK, case), top)]
        yield (_row_label(case) + cells + f"{best[0] if best else '-':>10}"
               + f"{ratios[0]:>9}{ratios[1]:>11}{ratios[2]:>9}")


PER_REQUEST_BATCHES = (1, 32, 256)


def _per_request_cases(cases: list[Case]) -> list[Case]:
    """One client, CartPole, the smallest fill: what one small request costs."""
    fill = min((case.fill for case in cases if case.fill is not None), default=None)
    return [case for case in cases if case.payload == CARTPOLE.name and case.clients == 1
            and case.batch in PER_REQUEST_BATCHES and case.fill in (None, fill)]


def _per_request(results: Results, cases: list[Case]) -> Iterator[str]:
    keys = [key for key in (PRIMARY, SDK) if any(s.key == key for s in results.subjects)]
    yield ("PER REQUEST, one client: service CPU / client CPU per request (per call for the "
           "SDK), us; rate / ceiling (median)")
    yield (f"{'operation':<22}{'batch':>6}"
           + "".join(f"{key + ' svc/cli':>18}{key + '/ceil':>12}" for key in keys))
    for case in cases:
        cells = ""
        for key in keys:
            measurement = results.find(key, **vars(case))
            if measurement is None or measurement.error:
                cells += f"{'-':>18}{'-':>12}"
                continue
            service = measurement.median_per_request("service_cpu_s")
            client = measurement.median_per_request("client_cpu_s")
            cells += (f"{_us(service) + ' / ' + _us(client):>18}"
                      f"{_ratio(_rate(results, key, case), _ceiling_rate(results, case)):>12}")
        fill = f" fill {case.fill:,}" if case.fill is not None else ""
        yield f"{case.op + fill:<22}{case.batch:>6}" + cells


def _ceiling_rate(results: Results, case: Case) -> float | None:
    best = ceiling(results, case)
    return best[1] if best else None


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def ceiling(results: Results, case: Case) -> tuple[str, float] | None:
    """The fastest raw Redis form of this case, and its median rate."""
    rates = [(key, rate) for key in RAW_FORMS if (rate := _rate(results, key, case)) is not None]
    return max(rates, key=lambda pair: pair[1], default=None)


def _grid(results: Results, cases: list[Case], title: str,
          cell: Callable[[Measurement], str], width: int) -> Iterator[str]:
    subjects = _subjects(results, cases)
    yield title + " (median)"
    for op in ("store", "sample"):
        rows = [case for case in cases if case.op == op]
        if not rows:
            continue
        if len({case.op for case in cases}) > 1:
            yield f"{op}:"
        yield _label_header(op) + "".join(f"{s.key:>{width}}" for s in subjects)
        for case in rows:
            cells = ""
            for subject in subjects:
                measurement = results.find(subject.key, **vars(case))
                text = "-" if measurement is None else (
                    "ERR" if measurement.error else cell(measurement))
                cells += f"{text:>{width}}"
            yield _row_label(case) + cells


def _latency(measurement: Measurement) -> str:
    p50, p99 = measurement.median("p50_ms"), measurement.median("p99_ms")
    return f"{_ms(p50)}/{_ms(p99)}"


def _cpu(measurement: Measurement) -> str:
    if measurement.subject.kind == "in-process":
        return _ms(measurement.median_per_1k("client_cpu_s"))
    service = measurement.median_per_1k("service_cpu_s")
    redis = _ms(measurement.median_per_1k("redis_cpu_s"))
    return f"{_ms(service)}/{redis}" if service is not None else f"-/{redis}"


def _memory(results: Results) -> Iterator[str]:
    yield ("REDIS MEMORY per stored transition: INFO used_memory after filling minus before, "
           "divided by the fill")
    yield (f"{'payload':<9}{'fill':>10}{'record':>10}{'service':>12}{'x record':>10}"
           f"{'raw strings':>12}{'raw hash':>12}")
    for memory in results.memory:
        service = memory.service_bytes
        yield (f"{memory.payload:<9}{memory.fill:>10,}{memory.record_size:>9} B"
               f"{_bytes(service):>12}{_ratio(service, memory.record_size):>10}"
               f"{_bytes(memory.raw_bytes):>12}{_bytes(memory.hash_bytes):>12}")


def _prioritized(results: Results) -> Iterator[str]:
    yield ("PRIORITIZED vs UNIFORM: transitions per second (median), 1-worker service, one "
           "client, safetensors; alpha 0.6")
    yield f"{'fill':>10}  {'operation':<30}{'uniform':>10}{'prioritized':>13}{'ratio':>8}"
    for row in results.prioritized:
        yield (f"{row.fill:>10,}  {row.operation:<30}{_si(row.uniform):>10}"
               f"{_si(row.prioritized):>13}{_ratio(row.prioritized, row.uniform):>8}")


@dataclass(frozen=True)
class Target:
    what: str
    subject: str
    value: float | None
    goal: str
    passed: bool | None
    shown: str

    @property
    def result(self) -> str:
        return "n/a" if self.passed is None else ("PASS" if self.passed else "FAIL")


def targets(results: Results) -> list[Target]:
    found: list[Target] = []
    cartpole = [m for m in results.measurements if m.case.payload == CARTPOLE.name]
    fills = sorted({m.case.fill for m in cartpole if m.case.fill is not None})
    for key in (PRIMARY, SDK):
        for fill in fills:
            for batch, goal in ((32, 0.25), (256, 0.5)):
                case = Case("sample", CARTPOLE.name, batch, 1, fill)
                found.append(_at_least(f"sample b{batch} cartpole fill {fill:,}, 1 client: / "
                                       "Redis ceiling", key, _to_ceiling(results, key, case),
                                       goal))
        if len(fills) > 1:
            low, high = (results.find(key, **vars(Case("sample", CARTPOLE.name, 256, 1, fill)))
                         for fill in (fills[0], fills[-1]))
            growth = None
            if low and high and not (low.error or high.error):
                growth = _value_ratio(high.median("p99_ms"), low.median("p99_ms"))
            found.append(_at_most(f"sample b256 cartpole, 1 client: p99 fill {fills[-1]:,} / "
                                  f"p99 fill {fills[0]:,}", key, growth, 1.5))
        for batch, goal in ((32, 0.12), (256, 0.15)):
            case = Case("store", CARTPOLE.name, batch, 1)
            found.append(_at_least(f"store b{batch} cartpole, 1 client: / Redis ceiling", key,
                                   _to_ceiling(results, key, case), goal))
    for memory in results.memory:
        if memory.payload == CARTPOLE.name:
            value = memory.service_bytes
            passed = None if value is None else value <= 2 * memory.record_size
            found.append(Target(f"Redis memory per cartpole transition, fill {memory.fill:,}",
                                "service", value, f"<= {2 * memory.record_size} B", passed,
                                _bytes(value)))
    return found + _compressed_targets(results)


def _compressed_targets(results: Results) -> list[Target]:
    """Pong's frames kept compressed: what a transition costs in Redis (1 KB, the moonshot
    500 B, against 56 KB raw), and the SDK's speed over its speed on uncompressed Atari
    transitions in this run (3x)."""
    found: list[Target] = []
    for memory in results.memory:
        if memory.payload == PONG.name:
            value = memory.service_bytes
            found.append(Target(f"Redis memory per pong transition, fill {memory.fill:,}",
                                "service", value, "<= 1000 B",
                                None if value is None else value <= 1000, _bytes(value)))
    fill = {payload: min((m.case.fill for m in results.measurements
                          if m.case.payload == payload and m.case.fill), default=None)
            for payload in (PONG.name, ATARI.name)}
    if not any(m.case.payload == PONG.name for m in results.measurements):
        return found
    for op in ("store", "sample"):
        for batch in (32, 256):
            pong, atari = (Case(op, payload, batch, 1, fill[payload] if op == "sample" else None)
                           for payload in (PONG.name, ATARI.name))
            found.append(_at_least(f"{op} b{batch} pong compressed, 1 client: / atari "
                                   "uncompressed", SDK, _value_ratio(
                                       _rate(results, SDK, pong), _rate(results, SDK, atari)),
                                   3.0))
    return found


def _to_ceiling(results: Results, key: str, case: Case) -> float | None:
    best = ceiling(results, case)
    return _value_ratio(_rate(results, key, case), best[1] if best else None)


def _at_least(what: str, key: str, value: float | None, goal: float) -> Target:
    return Target(what, key, value, f">= {goal:.2f}", None if value is None else value >= goal,
                  "-" if value is None else f"{value:.2f}")


def _at_most(what: str, key: str, value: float | None, goal: float) -> Target:
    return Target(what, key, value, f"<= {goal:.2f}", None if value is None else value <= goal,
                  "-" if value is None else f"{value:.2f}")


def _targets(results: Results) -> Iterator[str]:
    found = targets(results)
    width = max([len(target.what) for target in found] + [6]) + 2
    yield "TARGETS (st-1w: the service over HTTP, safetensors, 1 worker; sdk-1w: the same"
    yield (f" through the SDK; Redis ceiling: the fastest of {', '.join(RAW_FORMS)} for the same"
           " case in this run)")
    yield f"{'target':<{width}}{'subject':>8}{'measured':>10}{'goal':>10}  result"
    for target in found:
        yield (f"{target.what:<{width}}{target.subject:>8}{target.shown:>10}{target.goal:>10}  "
               f"{target.result}")


def _reference(results: Results) -> Iterator[str]:
    fill = min((m.case.fill for m in results.measurements
                if m.case.payload == CARTPOLE.name and m.case.fill), default=None)
    rows = [("insert, 1 client (here: store batch 256)", "25k-29k",
             Case("store", CARTPOLE.name, 256, 1)),
            ("insert, 4 clients (here: store batch 256)", "70k",
             Case("store", CARTPOLE.name, 256, 4)),
            ("sample batch 256, 1 client", "38k", Case("sample", CARTPOLE.name, 256, 1, fill))]
    subjects = [key for key in (PRIMARY, f"st-{results.config.workers}w", SDK)
                if any(s.key == key for s in results.subjects)]
    subjects = list(dict.fromkeys(subjects))
    yield ("REFERENCE: Reverb, measured earlier on this machine (figures from the issue, not "
           "re-run), CartPole transitions, beside this run's")
    yield f"{'':<44}{'Reverb':>10}" + "".join(f"{key:>10}" for key in subjects)
    for what, reverb, case in rows:
        yield f"{what:<44}{reverb:>10}" + "".join(
            f"{_si(_rate(results, key, case)):>10}" for key in subjects)
    memory = max((m for m in results.memory if m.payload == CARTPOLE.name),
                 key=lambda m: m.fill, default=None)
    service = _bytes(memory.service_bytes) if memory else "-"
    yield f"{'server memory per 45-byte transition':<44}{'5.4 KB':>10}{service:>10}"


def _value_ratio(top: float | None, bottom: float | None) -> float | None:
    if top is None or bottom is None or bottom == 0:
        return None
    return top / bottom


def _ratio(top: float | None, bottom: float | None) -> str:
    value = _value_ratio(top, bottom)
    return "-" if value is None else f"{value:.2f}"


def _si(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1024:.1f} KB" if value >= 10_000 else f"{value:.1f} B"
