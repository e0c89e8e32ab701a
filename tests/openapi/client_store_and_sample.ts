// Stores a hand-built safetensors batch and samples it back through the client that
// @hey-api/openapi-ts generated from the service's /openapi.json (./gen), then
// publishes weights and fetches them with If-None-Match. Prints what it saw as JSON
// for tests/openapi/test_generated_client.py to check.
import { createClient, createConfig } from "@hey-api/client-fetch";
import { createBuffer, fetchWeights, publishWeights, sample, store } from "./gen/sdk.gen";
import type { SampleReply, StoreData } from "./gen/types.gen";

// node's own, declared here rather than installing @types/node
declare const process: { argv: string[]; exit(code: number): never };

const SAFETENSORS = "application/x-safetensors";

type Tensor = { dtype: "F32" | "I64" | "BOOL"; shape: number[]; bytes: Uint8Array };

function encode(tensors: Record<string, Tensor>): Uint8Array<ArrayBuffer> {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, tensor] of Object.entries(tensors)) {
    header[name] = { dtype: tensor.dtype, shape: tensor.shape,
                     data_offsets: [offset, offset + tensor.bytes.length] };
    offset += tensor.bytes.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // data starts 8-aligned
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const tensor of Object.values(tensors)) {
    out.set(tensor.bytes, at);
    at += tensor.bytes.length;
  }
  return out;
}

function decode(body: unknown): Record<string, { dtype: string; shape: number[];
                                                     values: number[] }> {
  if (!(body instanceof ArrayBuffer)) {
    throw new Error(`expected safetensors bytes, got ${String(body)}`);
  }
  const view = new DataView(body);
  const length = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(body, 8, length)));
  const result: Record<string, { dtype: string; shape: number[]; values: number[] }> = {};
  for (const [name, info] of Object.entries<any>(header)) {
    if (name === "__metadata__") continue;
    const [start, end] = info.data_offsets as [number, number];
    const data = body.slice(8 + length + start, 8 + length + end);
    const values = info.dtype === "F32" ? Array.from(new Float32Array(data))
      : info.dtype === "I64" ? Array.from(new BigInt64Array(data), Number)
      : Array.from(new Uint8Array(data));
    result[name] = { dtype: info.dtype, shape: info.shape, values };
  }
  return result;
}

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);
const i64 = (values: number[]) => new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer);

async function main(): Promise<void> {
  const [baseUrl, name] = process.argv.slice(2);
  const client = createClient(createConfig({ baseUrl }));
  const created = await createBuffer({ client, path: { name }, body: {
    capacity: 100,
    schema: { fields: { id: { dtype: "int64" }, obs: { dtype: "float32", shape: [2] },
                        done: { dtype: "bool" } } } } });
  const ids = [0, 1, 2, 3, 4, 5, 6, 7];
  const batch = encode({
    id: { dtype: "I64", shape: [8], bytes: i64(ids) },
    obs: { dtype: "F32", shape: [8, 2], bytes: f32(ids.flatMap((id) => [id, id / 2])) },
    done: { dtype: "BOOL", shape: [8], bytes: new Uint8Array(ids.map((id) => id % 2)) },
  });
  // The document gives the store's JSON layouts as its body type; the safetensors body
  // goes as bytes, with the JSON serializer turned off.
  const stored = await store({ client, path: { name },
                               body: batch as unknown as StoreData["body"],
                               bodySerializer: null, headers: { "Content-Type": SAFETENSORS } });
  const asJson = await sample({ client, path: { name }, query: { batch_size: 5 } });
  const reply: SampleReply | undefined = asJson.data;
  const asTensors = await sample({ client, path: { name }, query: { batch_size: 3 },
                                   headers: { Accept: SAFETENSORS }, parseAs: "arrayBuffer" });
  const weights = encode({ "layers.0.weight": { dtype: "F32", shape: [1, 2], bytes: f32([1, 2]) },
                           "layers.0.bias": { dtype: "F32", shape: [1], bytes: f32([0.5]) } });
  // The client serializes every body as JSON unless told not to, binary ones too.
  const published = await publishWeights({ client, path: { name }, body: new Blob([weights]),
                                           bodySerializer: null });
  const etag = published.response.headers.get("etag");
  const unchanged = await fetchWeights({ client, path: { name },
                                         headers: { "if-none-match": etag ?? "" } });
  const fetched = await fetchWeights({ client, path: { name }, parseAs: "arrayBuffer" });
  for (const [what, answer] of Object.entries({ stored, asJson, asTensors, published, fetched })) {
    if (answer.error !== undefined) {
      throw new Error(`${what}: ${answer.response.status} ${JSON.stringify(answer.error)}`);
    }
  }
  console.log(JSON.stringify({
    created: created.response.status,
    stored: { status: stored.response.status, data: stored.data,
              contentType: stored.request.headers.get("content-type") },
    json: { status: asJson.response.status, data: reply },
    tensors: { status: asTensors.response.status,
               contentType: asTensors.response.headers.get("content-type"),
               data: decode(asTensors.data) },
    published: { status: published.response.status, data: published.data, etag },
    unchanged: { status: unchanged.response.status,
                 etag: unchanged.response.headers.get("etag") },
    fetched: { status: fetched.response.status, etag: fetched.response.headers.get("etag"),
               data: decode(fetched.data) },
  }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
