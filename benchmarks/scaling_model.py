"""What N machines give: the service replicas, Redis masters and machines that a workload
needs, from the CPU each part was measured to spend per 1,000 transitions.

The model is linear, and rests on these assumptions:

- Each part's CPU grows in proportion to the transitions it moves: a store of the same
  batch size costs the same per transition at any rate, and so does a sample. Per-request
  overheads are inside the per-transition figure, at the batch sizes measured.
- A `replay serve` process with one uvicorn worker uses at most one core; replicas are
  stateless, share nothing but Redis, and a load balancer spreads requests evenly.
- A Redis master runs its commands on one thread: one core each at most. A buffer of S
  shards keeps one ring per master and its load divides evenly over them (S = masters).
- Each master has `redis_replicas` replicas, which apply its writes at the measured
  replica cost. Every process (service replica, master, replica) is given a core of its
  own; a master and its replica never share a machine.
- Cores are planned to `utilisation` (0.7: queues stay short below it), memory to
  `master_memory_gb` of data per master.
- Not modelled: the network (a store's bytes per second are printed beside), the clients'
  machines (the actors' and the learner's CPU in the SDK is printed as a share of
  theirs), disk and persistence, failover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from replay_service.benchmarks.markdown import table

__all__ = ["APE_X", "Costs", "Machines", "PartCosts", "Plan", "Rates", "machines", "plan",
           "render", "render_machines"]


@dataclass(frozen=True)
class PartCosts:
    """CPU milliseconds per 1,000 transitions of one operation, by part."""

    service: float
    redis: float
    """Of the Redis masters."""
    replica: float
    """Of the Redis replicas (0: measured without any)."""
    client: float


@dataclass(frozen=True)
class Costs:
    """What one payload was measured to cost."""

    payload: str
    store: PartCosts
    sample: PartCosts
    bytes_per_transition: float
    """Redis memory per stored transition, on the masters."""
    wire_bytes_in: float = 0.0
    """Bytes per transition in a store's body."""


@dataclass(frozen=True)
class Rates:
    """A workload: transitions stored and sampled per second, and the capacity kept."""

    name: str
    stored_per_s: float
    sampled_per_s: float
    capacity: int
    actors: int = 1
    """Machines the stores come from: their SDK cost is shared among them."""


APE_X = Rates("Ape-X", stored_per_s=12_500, sampled_per_s=19 * 512, capacity=2_000_000,
              actors=360)
"""Horgan et al. 2018, Atari: 360 actors, about 12.5k transitions/s in, 19 batches of 512
per second out to one learner, 2 million transitions kept."""


@dataclass(frozen=True)
class Plan:
    rates: Rates
    costs: Costs
    service_cores: float
    """At full load: what the service's processes spend."""
    redis_cores: float
    replica_cores: float
    replicas: int
    """`replay serve` processes."""
    masters_for_cpu: int
    masters_for_memory: int
    redis_replicas: int
    cores_per_machine: int
    actor_share: float
    """Of one actor's core, spent in the SDK storing."""
    learner_cores: float
    """The learner's cores spent in the SDK sampling."""

    @property
    def masters(self) -> int:
        return max(self.masters_for_cpu, self.masters_for_memory)

    @property
    def replica_nodes(self) -> int:
        return self.masters * self.redis_replicas

    @property
    def cores(self) -> int:
        """One per service process and per Redis node: each is single-threaded."""
        return self.replicas + self.masters + self.replica_nodes

    @property
    def machines(self) -> int:
        """Enough for the cores, and one per copy of the data."""
        return max(math.ceil(self.cores / self.cores_per_machine), 1 + self.redis_replicas)

    @property
    def memory_gb(self) -> float:
        return self.rates.capacity * self.costs.bytes_per_transition / 1e9


def plan(costs: Costs, rates: Rates = APE_X, *, cores_per_machine: int = 16,
         utilisation: float = 0.7, master_memory_gb: float = 25.0,
         redis_replicas: int = 1) -> Plan:
    """The processes and machines that `rates` need at `costs`.

    Raises ValueError for a utilisation outside (0, 1] or a machine of no cores.
    """
    if not 0 < utilisation <= 1:
        raise ValueError(f"utilisation {utilisation} is not in (0, 1]: every core would be "
                         "planned past full")
    if cores_per_machine < 1:
        raise ValueError("a machine needs a core")
    service, redis, replica = (_cores(costs, part, rates.stored_per_s, rates.sampled_per_s)
                               for part in ("service", "redis", "replica"))
    # A replica applies its master's writes on one thread too.
    for_replicas = math.ceil(replica / redis_replicas / utilisation) if redis_replicas else 0
    memory = rates.capacity * costs.bytes_per_transition / 1e9
    return Plan(
        rates=rates, costs=costs, service_cores=service, redis_cores=redis,
        replica_cores=replica,
        replicas=max(1, math.ceil(service / utilisation)),
        masters_for_cpu=max(1, math.ceil(redis / utilisation), for_replicas),
        masters_for_memory=max(1, math.ceil(memory / master_memory_gb)),
        redis_replicas=redis_replicas, cores_per_machine=cores_per_machine,
        actor_share=costs.store.client * rates.stored_per_s / 1e6 / max(1, rates.actors),
        learner_cores=costs.sample.client * rates.sampled_per_s / 1e6)


def _cores(costs: Costs, part: str, stored_per_s: float, sampled_per_s: float) -> float:
    """ms per 1k transitions x transitions/s -> cores."""
    return float(getattr(costs.store, part) * stored_per_s
                 + getattr(costs.sample, part) * sampled_per_s) / 1e6


@dataclass(frozen=True)
class Machines:
    """What `count` machines sustain at a workload's mix of stores and samples."""

    count: int
    stored_per_s: float
    sampled_per_s: float
    replicas: int
    masters: int
    replica_nodes: int
    kept: float
    """Transitions the masters' memory holds."""


def machines(costs: Costs, count: int, *, mix: Rates = APE_X, cores_per_machine: int = 16,
             utilisation: float = 0.7, master_memory_gb: float = 25.0,
             redis_replicas: int = 1) -> Machines:
    """The most stores per second (with `mix`'s samples per store) that `count` machines
    sustain, provisioned as `plan` does: a core per service replica and per Redis node."""
    ratio = mix.sampled_per_s / mix.stored_per_s

    def provisioned(stored: float) -> Plan:
        return plan(costs, Rates(mix.name, stored, stored * ratio, 0), utilisation=utilisation,
                    cores_per_machine=cores_per_machine, master_memory_gb=master_memory_gb,
                    redis_replicas=redis_replicas)

    budget = count * cores_per_machine
    low, high = 0.0, 1e3
    while provisioned(high).cores <= budget and high < 1e12:
        low, high = high, high * 2
    for _ in range(60):  # the largest rate whose processes fit
        middle = (low + high) / 2
        low, high = (middle, high) if provisioned(middle).cores <= budget else (low, middle)
    fitted = provisioned(low)
    kept = fitted.masters * master_memory_gb * 1e9 / max(1.0, costs.bytes_per_transition)
    return Machines(count, low, low * ratio, fitted.replicas, fitted.masters,
                    fitted.replica_nodes, kept)


def render(plans: list[Plan], utilisation: float) -> str:
    """The plans as a pipe table, and a sentence each."""
    rows = [[p.costs.payload, f"{p.service_cores:.2f}", p.replicas, f"{p.redis_cores:.2f}",
             f"{p.masters_for_cpu} / {p.masters_for_memory}", f"{p.replica_cores:.2f}",
             p.cores, p.machines, f"{p.memory_gb:.1f}",
             f"{p.rates.stored_per_s * p.costs.wire_bytes_in / 1e6:.1f}",
             f"{p.actor_share:.4f}", f"{p.learner_cores:.2f}"] for p in plans]
    lines = [table(["payload", "service cores", "replicas", "master cores",
                    "masters cpu / mem", "replica cores", "cores", "machines", "data GB",
                    "in MB/s", "actor core share", "learner cores"], rows), ""]
    for p in plans:
        lines.append(
            f"- {p.costs.payload}: {p.rates.name}'s {p.rates.stored_per_s:,.0f} stored/s and "
            f"{p.rates.sampled_per_s:,.0f} sampled/s take {p.service_cores:.2f} service cores "
            f"and {p.redis_cores:.2f} Redis master cores at full load: {p.replicas} service "
            f"replica(s) and {p.masters} master(s) (a {p.masters}-shard buffer) with "
            f"{p.replica_nodes} replica node(s) at {utilisation:.0%} utilisation: {p.cores} "
            f"cores, {p.machines} machine(s) of {p.cores_per_machine} cores; "
            f"{p.memory_gb:.1f} GB of data.")
    return "\n".join(lines)


def render_machines(payload: str, rows: list[Machines]) -> str:
    return table(["payload", "machines", "stored/s", "sampled/s", "service replicas",
                  "masters", "replica nodes", "transitions kept"], [
        [payload, m.count, f"{m.stored_per_s:,.0f}", f"{m.sampled_per_s:,.0f}", m.replicas,
         m.masters, m.replica_nodes, f"{m.kept:,.0f}"] for m in rows])
