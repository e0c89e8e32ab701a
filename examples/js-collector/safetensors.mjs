// Safetensors by hand: an 8-byte little-endian header length, a JSON header of dtype,
// shape and byte offsets (plus optional string metadata), then the raw bytes.

const ARRAYS = { F32: Float32Array, F64: Float64Array, I64: BigInt64Array, BOOL: Uint8Array,
                 U8: Uint8Array, I32: Int32Array };

/** Encode {name: {dtype, shape, data: TypedArray}} into one body. */
export function encode(tensors, metadata) {
  const header = metadata ? { __metadata__: metadata } : {};
  let offset = 0;
  for (const [name, { dtype, shape, data }] of Object.entries(tensors)) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // tensors start 8-byte aligned
  const head = new TextEncoder().encode(json);
  const body = new Uint8Array(8 + head.length + offset);
  new DataView(body.buffer).setBigUint64(0, BigInt(head.length), true);
  body.set(head, 8);
  let at = 8 + head.length;
  for (const { data } of Object.values(tensors)) {
    body.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    at += data.byteLength;
  }
  return body;
}

/** Decode a body into {tensors: {name: {dtype, shape, data}}, metadata}. */
export function decode(buffer) {
  const bytes = new Uint8Array(buffer);
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  const { __metadata__: metadata = {}, ...entries } = header;
  const tensors = {};
  for (const [name, { dtype, shape, data_offsets: [start, end] }] of Object.entries(entries)) {
    const Array_ = ARRAYS[dtype];
    if (!Array_) throw new Error(`tensor '${name}': dtype ${dtype} is not supported here`);
    // a copy, so the typed array starts aligned whatever the header length
    const raw = bytes.slice(8 + length + start, 8 + length + end);
    tensors[name] = { dtype, shape, data: new Array_(raw.buffer) };
  }
  return { tensors, metadata };
}
