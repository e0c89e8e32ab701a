#!/usr/bin/env node
// A CartPole collector in plain JavaScript: node 18 or newer, no npm packages.
//
//   node collector.mjs --url http://localhost:8000 --buffer cartpole --steps 20000
//
// It acts epsilon-greedily with the newest Q-network the trainer published (fetched with
// If-None-Match, so an unchanged version costs a bodiless 304; at random before any),
// stores transitions as safetensors in batches, each with an Idempotency-Key so a
// retried batch is never stored twice, and records finished episodes. The trainer's
// orders travel in the weights' metadata: epsilon, insert_limit (wait for newer weights
// once the buffer holds that many) and stop. REPLAY_API_KEY holds the write key, if any.
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";

import { CartPole } from "./cartpole.mjs";
import { MlpQPolicy } from "./mlp.mjs";
import { decode, encode } from "./safetensors.mjs";

const SAFETENSORS = "application/x-safetensors";
const SCHEMA = { fields: {
  obs: { dtype: "float32", shape: [4] }, action: { dtype: "int64" },
  reward: { dtype: "float32" }, next_obs: { dtype: "float32", shape: [4] },
  done: { dtype: "bool" } } };
const RETRIES = 5;
const WAIT_FOR_WEIGHTS_MS = 200;

class ReplayError extends Error {}

class Replay {
  constructor(url, buffer, key) {
    this.base = `${url.replace(/\/$/, "")}/buffers/${encodeURIComponent(buffer)}`;
    this.auth = key ? { authorization: `Bearer ${key}` } : {};
  }

  /** One request; 503 (Redis unreachable) is retried after the Retry-After it sends. */
  async call(method, path, { body, headers = {}, expect = [200] } = {}) {
    for (let attempt = 1; ; attempt++) {
      const response = await fetch(`${this.base}${path}`, {
        method, body, headers: { ...this.auth, ...headers } });
      if (expect.includes(response.status)) return response;
      if (response.status === 503 && attempt < RETRIES) {
        await sleep(1000 * Number(response.headers.get("retry-after") ?? 1));
        continue;
      }
      const error = await response.json().catch(() => ({}));
      throw new ReplayError(`${method} ${path}: ${response.status} ${error.error ?? ""} ` +
                            `${error.message ?? ""}`);
    }
  }

  async createBuffer() {
    // No capacity: matches a buffer the trainer created, or takes the service default.
    await this.call("PUT", "", { body: JSON.stringify({ schema: SCHEMA }),
                                 headers: { "content-type": "application/json" },
                                 expect: [200, 201] });
  }

  /** The newest weights, or null when `etag` is still the newest or none are published. */
  async fetchWeights(etag) {
    const response = await this.call("GET", "/weights", {
      headers: etag ? { "if-none-match": etag } : {}, expect: [200, 304, 404] });
    if (response.status === 304) return null;
    if (response.status === 404) {
      const error = await response.json();
      if (error.error === "weights_not_found") return null;
      throw new ReplayError(`GET /weights: ${error.message}`);
    }
    const { tensors, metadata } = decode(await response.arrayBuffer());
    return { tensors, metadata, etag: response.headers.get("etag"),
             version: Number(response.headers.get("x-replay-weights-version")) };
  }

  async store(columns) {
    const key = randomUUID(); // the same key on every retry of this batch
    const response = await this.call("POST", "/transitions", { body: encode(columns),
      headers: { "content-type": SAFETENSORS, "idempotency-key": key } });
    return response.json();
  }

  async recordEpisodes(episodes) {
    await this.call("POST", "/episodes", { body: JSON.stringify({ episodes }),
                                           headers: { "content-type": "application/json" } });
  }
}

function ordersOf(metadata) {
  return { epsilon: Number(metadata.epsilon ?? 1), stop: metadata.stop === "1",
           insertLimit: metadata.insert_limit ? Number(metadata.insert_limit) : Infinity };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Columns of `count` transitions, as the buffer's schema wants them. */
function batchColumns(rows) {
  const count = rows.length;
  const obs = new Float32Array(count * 4), nextObs = new Float32Array(count * 4);
  rows.forEach((row, i) => { obs.set(row.obs, i * 4); nextObs.set(row.nextObs, i * 4); });
  return {
    obs: { dtype: "F32", shape: [count, 4], data: obs },
    action: { dtype: "I64", shape: [count], data: BigInt64Array.from(rows, (r) => BigInt(r.action)) },
    reward: { dtype: "F32", shape: [count], data: Float32Array.from(rows, (r) => r.reward) },
    next_obs: { dtype: "F32", shape: [count, 4], data: nextObs },
    done: { dtype: "BOOL", shape: [count], data: Uint8Array.from(rows, (r) => (r.done ? 1 : 0)) },
  };
}

async function main() {
  const { values: options } = parseArgs({ options: {
    url: { type: "string", default: "http://localhost:8000" },
    buffer: { type: "string", default: "cartpole" },
    steps: { type: "string", default: "20000" },
    batch: { type: "string", default: "256" },
    source: { type: "string", default: "js-collector" } } });
  const steps = Number(options.steps), batchSize = Number(options.batch);
  const replay = new Replay(options.url, options.buffer, process.env.REPLAY_API_KEY);
  await replay.createBuffer();

  const env = new CartPole();
  const seen = { stored: 0, episodes: 0, fetched: 0, notModified: 0, version: 0 };
  let policy = null, orders = ordersOf({}), etag = null;
  let obs = env.reset(), episodeReturn = 0, episodeLength = 0;

  const refresh = async () => {
    const weights = await replay.fetchWeights(etag);
    if (weights === null) {
      if (etag) seen.notModified += 1;
      return false;
    }
    policy = new MlpQPolicy(weights.tensors);
    orders = ordersOf(weights.metadata);
    ({ etag, version: seen.version } = weights);
    seen.fetched += 1;
    return true;
  };

  while (seen.stored < steps && !orders.stop) {
    await refresh();
    const rows = [], episodes = [];
    while (rows.length < batchSize && seen.stored + rows.length < steps) {
      const explore = policy === null || Math.random() < orders.epsilon;
      const action = explore ? Math.floor(Math.random() * 2) : policy.greedy(obs);
      const { obs: nextObs, reward, terminated, truncated } = env.step(action);
      // A cut episode keeps done = false: its next_obs still bootstraps.
      rows.push({ obs, action, reward, nextObs, done: terminated });
      episodeReturn += reward;
      episodeLength += 1;
      if (terminated || truncated) {
        episodes.push({ return: episodeReturn, length: episodeLength, source: options.source });
        obs = env.reset();
        episodeReturn = 0;
        episodeLength = 0;
      } else {
        obs = nextObs;
      }
    }
    const reply = await replay.store(batchColumns(rows));
    seen.stored += reply.stored;
    if (episodes.length) {
      await replay.recordEpisodes(episodes);
      seen.episodes += episodes.length;
    }
    // Experience must not race ahead of learning: wait for the trainer's next weights.
    while (reply.total_inserted >= orders.insertLimit && !orders.stop && !(await refresh())) {
      await sleep(WAIT_FOR_WEIGHTS_MS);
    }
  }
  console.log(JSON.stringify(seen));
}

main().catch((error) => {
  console.error(error instanceof ReplayError ? error.message : error);
  process.exit(1);
});
