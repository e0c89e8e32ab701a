"""Parameter exchange: the trainer publishes weights, collectors fetch only what changed."""

import httpx
import numpy as np

from replay_service.wire.codec import (
    SAFETENSORS,
    decode_safetensors,
    encode_safetensors,
    read_safetensors_metadata,
)
from tests.service.factories import create


def publish(http: httpx.Client, name: str, body: bytes) -> httpx.Response:
    return http.put(f"/buffers/{name}/weights", content=body,
                    headers={"content-type": SAFETENSORS})


def weights(scale: float) -> bytes:
    return encode_safetensors({"layers.0.weight": np.full((2, 4), scale, np.float32),
                               "layers.0.bias": np.zeros(2, np.float32)},
                              metadata={"gradient_steps": str(int(scale * 100))})


def test_published_weights_come_back_with_an_etag(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10)
    reply = publish(http, buffer_name, weights(0.5))
    assert reply.status_code == 200
    assert reply.json()["version"] == 1
    fetched = http.get(f"/buffers/{buffer_name}/weights")
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == f'"{reply.json()["etag"]}"'
    assert fetched.headers["x-replay-weights-version"] == "1"
    tensors = decode_safetensors(fetched.content).columns
    np.testing.assert_array_equal(tensors["layers.0.weight"], np.full((2, 4), 0.5, np.float32))
    assert read_safetensors_metadata(fetched.content) == {"gradient_steps": "50"}


def test_fetching_with_the_newest_etag_is_a_bodiless_304(http: httpx.Client,
                                                         buffer_name: str) -> None:
    create(http, buffer_name, 10)
    publish(http, buffer_name, weights(0.5))
    etag = http.get(f"/buffers/{buffer_name}/weights").headers["etag"]
    unchanged = http.get(f"/buffers/{buffer_name}/weights", headers={"if-none-match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    publish(http, buffer_name, weights(0.7))
    changed = http.get(f"/buffers/{buffer_name}/weights", headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert changed.headers["x-replay-weights-version"] == "2"
    assert changed.headers["etag"] != etag


def test_a_recreated_buffer_never_reuses_an_etag(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10)
    publish(http, buffer_name, weights(0.5))
    old = http.get(f"/buffers/{buffer_name}/weights").headers["etag"]
    http.delete(f"/buffers/{buffer_name}")
    assert http.get(f"/buffers/{buffer_name}/weights").status_code == 404
    create(http, buffer_name, 10)
    publish(http, buffer_name, weights(0.9))
    fetched = http.get(f"/buffers/{buffer_name}/weights", headers={"if-none-match": old})
    assert fetched.status_code == 200
    assert decode_safetensors(fetched.content).columns["layers.0.weight"][0, 0] == np.float32(0.9)


def test_fetching_before_any_publication_is_404(http: httpx.Client, buffer_name: str) -> None:
    create(http, buffer_name, 10)
    reply = http.get(f"/buffers/{buffer_name}/weights")
    assert reply.status_code == 404
    assert reply.json()["error"] == "weights_not_found"


def test_weights_that_are_not_safetensors_are_refused(http: httpx.Client,
                                                      buffer_name: str) -> None:
    create(http, buffer_name, 10)
    publish(http, buffer_name, weights(0.5))
    assert publish(http, buffer_name, b"\x80\x04pickle").status_code == 400
    assert http.put(f"/buffers/{buffer_name}/weights", content=weights(0.1),
                    headers={"content-type": "application/json"}).status_code == 415
    # the published version is untouched
    assert http.get(f"/buffers/{buffer_name}/weights").headers["x-replay-weights-version"] == "1"


def test_publishing_to_an_unknown_buffer_is_404(http: httpx.Client, buffer_name: str) -> None:
    reply = publish(http, buffer_name, weights(0.5))
    assert reply.status_code == 404
    assert reply.json()["error"] == "buffer_not_found"
