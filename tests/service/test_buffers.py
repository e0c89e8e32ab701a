"""Creating, inspecting, listing and deleting buffers."""

import httpx

from tests.conftest import SERVICE_LIMITS
from tests.service.factories import TRACKED_SCHEMA, create, store_json, tracked_columns


def test_create_answers_201_with_the_buffer(http: httpx.Client, buffer_name: str) -> None:
    response = http.put(f"/buffers/{buffer_name}",
                        json={"capacity": 100, "schema": TRACKED_SCHEMA})
    assert response.status_code == 201
    info = response.json()
    assert info["name"] == buffer_name
    assert info["capacity"] == 100
    assert info["schema"]["fields"]["obs"] == {"dtype": "float32", "shape": [4],
                                              "allow_nonfinite": False}
    assert (info["size"], info["total_inserted"], info["total_sampled"]) == (0, 0, 0)


def test_create_again_identically_answers_200(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    response = http.put(f"/buffers/{buffer_name}",
                        json={"capacity": 100, "schema": TRACKED_SCHEMA})
    assert response.status_code == 200


def test_create_with_other_capacity_conflicts(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 100)
    response = http.put(f"/buffers/{buffer_name}", json={"capacity": 200})
    assert response.status_code == 409
    assert response.json()["field"] == "capacity"


def test_create_with_other_schema_conflicts(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 100, TRACKED_SCHEMA)
    other = {"fields": {"obs": {"dtype": "float64", "shape": [4]}}}
    response = http.put(f"/buffers/{buffer_name}", json={"capacity": 100, "schema": other})
    assert response.status_code == 409
    assert response.json()["field"] == "schema"


def test_create_without_body_takes_the_default_capacity(http: httpx.Client,
                                                        buffer_name: str) -> None:
    response = http.put(f"/buffers/{buffer_name}")
    assert response.status_code == 201
    assert response.json()["capacity"] == 100_000
    assert response.json()["schema"] is None


def test_first_store_sets_the_schema_of_a_buffer_created_without_one(
        http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10)
    response = http.post(f"/buffers/{buffer_name}/transitions", json={"transition": {
        "obs": [0.5, 1.5], "action": 3, "reward": 1, "done": True}})
    assert response.status_code == 200, response.text
    fields = http.get(f"/buffers/{buffer_name}").json()["schema"]["fields"]
    assert {name: (spec["dtype"], spec["shape"]) for name, spec in fields.items()} == {
        "obs": ("float32", [2]), "action": ("int64", []), "reward": ("int64", []),
        "done": ("bool", [])}


def test_create_over_the_capacity_limit_is_refused(http: httpx.Client, buffer_name: str) -> None:
    response = http.put(f"/buffers/{buffer_name}",
                        json={"capacity": SERVICE_LIMITS["max_capacity"] + 1})
    assert response.status_code == 422
    assert response.json()["field"] == "capacity"
    assert http.get(f"/buffers/{buffer_name}").status_code == 404


def test_create_with_an_unknown_dtype_names_the_field(http: httpx.Client,
                                                      buffer_name: str) -> None:
    schema = {"fields": {"obs": {"dtype": "float128", "shape": [4]}}}
    response = http.put(f"/buffers/{buffer_name}", json={"capacity": 10, "schema": schema})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["field"] == "schema.fields.obs.dtype"


def test_create_with_a_string_capacity_is_refused(http: httpx.Client, buffer_name: str) -> None:
    response = http.put(f"/buffers/{buffer_name}", json={"capacity": "10"})
    assert response.status_code == 422
    assert response.json()["field"] == "capacity"


def test_create_with_an_extra_key_is_refused(http: httpx.Client, buffer_name: str) -> None:
    response = http.put(f"/buffers/{buffer_name}", json={"capacity": 10, "colour": "red"})
    assert response.status_code == 422
    assert response.json()["field"] == "colour"


def test_a_name_that_could_inject_keys_is_refused(http: httpx.Client) -> None:
    for name in ["a}b", "a{b", "a:b", "-lead", "a b", "x" * 129]:
        response = http.put(f"/buffers/{name}", json={"capacity": 10})
        assert response.status_code == 422, name
        assert response.json()["field"] == "name"


def test_list_includes_created_buffers(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    names = [info["name"] for info in http.get("/buffers").json()["buffers"]]
    assert buffer_name in names


def test_delete_removes_the_buffer_and_its_data(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10, TRACKED_SCHEMA)
    store_json(http, buffer_name, tracked_columns(range(5)))
    assert http.delete(f"/buffers/{buffer_name}").status_code == 204
    assert http.get(f"/buffers/{buffer_name}").status_code == 404
    assert buffer_name not in [info["name"] for info in http.get("/buffers").json()["buffers"]]
    # Re-created under the same name, it starts empty, with its new schema.
    create(http, buffer_name, 10)
    assert http.get(f"/buffers/{buffer_name}/size").json()["size"] == 0
    assert http.get(f"/buffers/{buffer_name}").json()["schema"] is None


def test_delete_of_an_unknown_buffer_is_404(http: httpx.Client, buffer_name: str) -> None:
    response = http.delete(f"/buffers/{buffer_name}")
    assert response.status_code == 404
    assert response.json()["error"] == "buffer_not_found"


def test_create_without_capacity_accepts_an_existing_buffer(http: httpx.Client,
                                                            buffer_name: str) -> None:
    create(http, buffer_name, 7, TRACKED_SCHEMA)
    response = http.put(f"/buffers/{buffer_name}", json={"schema": TRACKED_SCHEMA})
    assert response.status_code == 200
    assert response.json()["capacity"] == 7
