"""The loopback Redis Cluster the cluster tests start: it lives in the package, where the
benchmarks use it too."""

from replay_service.benchmarks.local_cluster import LocalCluster

__all__ = ["LocalCluster"]
