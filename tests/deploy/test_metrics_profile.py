"""The compose profile `metrics` (Prometheus and Grafana), checked without an engine: the
images cannot be pulled here, so Compose resolves the profile, Debian's promtool and
prometheus run its Prometheus config, and Grafana's provisioning is held against the
compose file and against what the service really exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.prometheus import PrometheusServer, prometheus_binary
from tests.deploy.support import compose, compose_config
from tests.service.factories import TRACKED_SCHEMA, store_binary, tracked_columns
from tests.support import REPO, ServiceProcess

PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "deploy" / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "replay.yml"
DASHBOARD = GRAFANA / "dashboards" / "replay-service.json"
KEY_TARGET = "/etc/prometheus/replay-api-key"


def profile_config(variables: dict[str, str] | None = None) -> dict[str, Any]:
    result = compose("--profile", "metrics", "config", "--format", "json",
                     variables=variables)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = profile_config()["services"]
    return services


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the file or folder of this checkout bound there."""
    return {volume["target"]: Path(volume["source"]) for volume in service["volumes"]
            if volume["type"] == "bind"}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert queries
    return queries


def as_prometheus_evaluates(query: str) -> str:
    """A Grafana query with Grafana's own variables replaced as it would replace them."""
    return query.replace("$__rate_interval", "1m").replace("$buffer", ".*")


def test_the_profile_adds_prometheus_and_grafana_only_when_asked(
        services: dict[str, dict[str, Any]]) -> None:
    assert {"prometheus", "grafana"} <= set(services)
    assert not {"prometheus", "grafana"} & set(compose_config()["services"])
    assert services["prometheus"]["image"].startswith("prom/prometheus:v")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["metrics"]
        [port] = services[name]["ports"]
        assert port["host_ip"] == "127.0.0.1", f"{name} is published on loopback only"
        for target, source in mounts(services[name]).items():
            assert source.exists(), f"{name} mounts {source} at {target}: no such file"


def test_prometheus_reads_the_config_this_checkout_holds(
        services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    config_file = next(arg.split("=", 1)[1] for arg in prometheus["command"]
                       if arg.startswith("--config.file="))
    assert mounts(prometheus)[config_file] == PROMETHEUS_CONFIG
    [job] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    [target] = job["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host in services and host == "service"
    assert int(port) == int(services["service"]["environment"]["REPLAY_PORT"])
    assert job["authorization"]["credentials_file"] == KEY_TARGET
    assert [(config["source"], config["target"]) for config in prometheus["configs"]] == [
        ("replay-api-key", KEY_TARGET)]


@pytest.mark.parametrize(("variables", "key"), [
    ({"REPLAY_READ_KEY": "read-key-of-some-length", "REPLAY_WRITE_KEY": "write-key-long"},
     "read-key-of-some-length"),
    ({"REPLAY_WRITE_KEY": "write-key-of-some-length"}, "write-key-of-some-length"),
    ({}, "no-key-set"),
])
def test_prometheus_scrapes_with_the_read_key_else_the_write_key(
        variables: dict[str, str], key: str) -> None:
    config = profile_config(variables)
    assert config["configs"]["replay-api-key"]["content"] == key


def localized_prometheus_config(tmp_path: Path, target: str, key: str) -> Path:
    """The compose profile's config as it runs here: the service at `target`, the key
    in a file of `tmp_path`, and a scrape a second so that a test need not wait 15 s."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = "1s"
    [job] = config["scrape_configs"]
    key_file = tmp_path / "replay-api-key"
    key_file.write_text(key)
    job["authorization"]["credentials_file"] = str(key_file)
    job["static_configs"][0]["targets"] = [target]
    localized = tmp_path / "prometheus.yml"
    localized.write_text(yaml.safe_dump(config))
    return localized


def test_promtool_passes_the_prometheus_config(tmp_path: Path) -> None:
    config = localized_prometheus_config(tmp_path, "127.0.0.1:8000", "no-key-set")
    checked = subprocess.run([prometheus_binary("promtool"), "check", "config", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_profile_config_scrapes_the_service_and_every_dashboard_query_evaluates(
        service: ServiceProcess, tmp_path: Path) -> None:
    # The key file holds the compose file's placeholder: the open service ignores it.
    config = localized_prometheus_config(tmp_path, f"127.0.0.1:{service.port}", "no-key-set")
    with PrometheusServer(config, tmp_path) as prometheus:
        prometheus.value_when('up{job="replay"}', 1)
        prometheus.value_when("replay_redis_up", 1)
        for query in dashboard_queries():
            prometheus.query(as_prometheus_evaluates(query))  # asserts that it parses


def test_grafana_is_provisioned_with_the_profiles_prometheus_and_dashboard(
        services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    provisioning = mounts(grafana)
    assert provisioning["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    [datasource] = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in services and "--web.listen-address" not in " ".join(
        services["prometheus"]["command"]), "Prometheus listens on its default port, 9090"
    [provider] = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    folder = provider["options"]["path"]
    assert provisioning[folder] == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert provisioning[str(Path(home).parent)] / Path(home).name == DASHBOARD
    dashboard = json.loads(DASHBOARD.read_text())
    sources = {panel["datasource"]["uid"] for panel in dashboard["panels"]} | {
        target["datasource"]["uid"] for panel in dashboard["panels"]
        for target in panel["targets"]}
    assert sources == {datasource["uid"]}


def exported_samples(service: ServiceProcess, buffer_name: str) -> set[str]:
    """Every sample name a real /metrics answer holds once each counter has counted."""
    with httpx.Client(base_url=service.url, timeout=30) as http:
        assert http.put(f"/buffers/{buffer_name}", json={
            "capacity": 100, "schema": TRACKED_SCHEMA,
            "rate_limit": {"min_size": 5}}).status_code == 201
        store_binary(http, buffer_name, tracked_columns(range(1)))
        assert http.get(f"/buffers/{buffer_name}/sample",
                        params={"batch_size": 1}).status_code == 429
        store_binary(http, buffer_name, tracked_columns(range(1, 5)))
        for _ in range(2):
            assert http.post(f"/buffers/{buffer_name}/transitions",
                             headers={"Idempotency-Key": f"{buffer_name}-once"},
                             json={"columns": {name: values.tolist() for name, values in
                                               tracked_columns(range(5, 6)).items()}}
                             ).status_code == 200
        assert http.get(f"/buffers/{buffer_name}/sample",
                        params={"batch_size": 1}).status_code == 200
        text = http.get("/metrics").text
    return {sample.name for family in text_string_to_metric_families(text)
            for sample in family.samples}


def test_the_dashboard_shows_what_the_service_exports(service: ServiceProcess,
                                                      buffer_name: str) -> None:
    exported = exported_samples(service, buffer_name)
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", name) for name in exported
                if name.startswith("replay_")}
    dashboard = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries() + [variable["definition"]
                                     for variable in dashboard["templating"]["list"]]
    named = {name for query in queries for name in re.findall(r"\breplay_\w+", query)}
    assert named <= exported, f"the dashboard asks for what no service exports: {named - exported}"
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in named}
    assert families <= shown, f"exported, but on no panel: {families - shown}"
