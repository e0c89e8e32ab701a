// The trainer's Q-network as published: Linear layers `layers.{i}.weight` ([out, in]) and
// `layers.{i}.bias` ([out]) in index order, ReLU between them, none after the last
// (replay_service.trainer.network, replay_service.client.collector.policy).

const PARAMETER = /^layers\.(\d+)\.(weight|bias)$/;

export class MlpQPolicy {
  constructor(tensors) {
    const layers = new Map();
    for (const [name, tensor] of Object.entries(tensors)) {
      const match = PARAMETER.exec(name);
      if (!match) throw new Error(`unexpected tensor '${name}' in an MLP policy`);
      if (tensor.dtype !== "F32") throw new Error(`tensor '${name}' is ${tensor.dtype}, not F32`);
      const index = Number(match[1]);
      layers.set(index, { ...layers.get(index), [match[2]]: tensor });
    }
    if (layers.size === 0) throw new Error("no layers in the published weights");
    this.layers = [...layers.keys()].sort((a, b) => a - b).map((index) => {
      const { weight, bias } = layers.get(index);
      if (!weight || !bias) throw new Error(`layer ${index} needs a weight and a bias`);
      const [outputs, inputs] = weight.shape;
      if (weight.shape.length !== 2 || bias.shape[0] !== outputs) {
        throw new Error(`layer ${index}: weight ${weight.shape} and bias ${bias.shape} do not ` +
                        "form a Linear layer");
      }
      return { inputs, outputs, weight: weight.data, bias: bias.data };
    });
    for (let i = 1; i < this.layers.length; i++) {
      if (this.layers[i].inputs !== this.layers[i - 1].outputs) {
        throw new Error(`layer ${i} takes ${this.layers[i].inputs} inputs, the one before ` +
                        `gives ${this.layers[i - 1].outputs}`);
      }
    }
  }

  get obsDim() { return this.layers[0].inputs; }
  get nActions() { return this.layers[this.layers.length - 1].outputs; }

  qValues(obs) {
    let x = Float32Array.from(obs);
    this.layers.forEach(({ inputs, outputs, weight, bias }, index) => {
      const y = new Float32Array(outputs);
      for (let o = 0; o < outputs; o++) {
        let sum = bias[o];
        for (let i = 0; i < inputs; i++) sum += weight[o * inputs + i] * x[i];
        y[o] = index < this.layers.length - 1 ? Math.max(sum, 0) : sum;
      }
      x = y;
    });
    return x;
  }

  greedy(obs) {
    const q = this.qValues(obs);
    let best = 0;
    for (let a = 1; a < q.length; a++) if (q[a] > q[best]) best = a;
    return best;
  }
}
