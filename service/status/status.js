// The status page: polls the JSON API and redraws the buffers table and the charts.
// Plain JavaScript, no libraries: the page must work on a machine without internet.
"use strict";

(() => {
  const KEY_STORAGE = "replay-service.api-key";
  const query = new URLSearchParams(location.search);
  // ?refresh=SECONDS polls faster or slower; half a second at the fastest.
  const REFRESH_MS = Math.max(500, 1000 * (Number(query.get("refresh")) || 2));
  const POINTS_PER_SOURCE = 500;
  const EPISODE_PAGE = 1000;
  const EPISODE_PAGES_PER_POLL = 20;
  const MEAN_OF_LAST = 20;
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2",
                  "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
  const SVG_NS = "http://www.w3.org/2000/svg";

  /** Per buffer: the previous counters (for rates), the weights held, the episodes read. */
  const buffers = new Map();

  class Unauthorized extends Error {}

  async function errorMessage(response) {
    try {
      const body = await response.json();
      return body.message || `HTTP ${response.status}`;
    } catch {
      return `HTTP ${response.status}`;
    }
  }

  async function api(path, headers = {}) {
    const sent = new Headers(headers);
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) sent.set("Authorization", `Bearer ${key}`);
    const response = await fetch(new URL(path, document.baseURI), {headers: sent, cache: "no-store"});
    if (response.status === 401) throw new Unauthorized(await errorMessage(response));
    return response;
  }

  async function readJson(path) {
    const response = await api(path);
    if (!response.ok) throw new Error(`${path}: ${await errorMessage(response)}`);
    return response.json();
  }

  function bufferPath(name, rest) {
    return `buffers/${encodeURIComponent(name)}/${rest}`;
  }

  function freshState(info) {
    return {
      createdAt: info.created_at, previous: null, rates: null,
      weights: {etag: null, version: null},
      episodes: {after: "0", count: 0, next: 0, bySource: new Map(), recent: []},
    };
  }

  async function refreshWeights(name, state) {
    const headers = state.weights.etag ? {"If-None-Match": state.weights.etag} : {};
    const response = await api(bufferPath(name, "weights"), headers);
    if (response.status === 200) {
      state.weights = {etag: response.headers.get("ETag"),
                       version: Number(response.headers.get("X-Replay-Weights-Version"))};
    } else if (response.status === 404) {
      state.weights = {etag: null, version: null};
    } else if (response.status !== 304) {
      throw new Error(`${name} weights: ${await errorMessage(response)}`);
    }
    // Only the headers matter: stop the download of the tensors themselves.
    if (response.body) await response.body.cancel();
  }

  async function refreshEpisodes(name, state) {
    const episodes = state.episodes;
    for (let page = 0; page < EPISODE_PAGES_PER_POLL; page++) {
      const path = bufferPath(name, `episodes?after=${encodeURIComponent(episodes.after)}` +
                              `&limit=${EPISODE_PAGE}`);
      const response = await api(path);
      if (response.status === 404) return;  // deleted since the list was read
      if (!response.ok) throw new Error(`${name} episodes: ${await errorMessage(response)}`);
      const body = await response.json();
      for (const episode of body.episodes) {
        const source = episode.source || "(no source)";
        if (!episodes.bySource.has(source)) episodes.bySource.set(source, []);
        const series = episodes.bySource.get(source);
        series.push({x: episodes.next, y: episode.return});
        if (series.length > POINTS_PER_SOURCE) series.splice(0, series.length - POINTS_PER_SOURCE);
        episodes.recent.push(episode.return);
        if (episodes.recent.length > MEAN_OF_LAST) episodes.recent.shift();
        episodes.next += 1;
      }
      episodes.count += body.episodes.length;
      episodes.after = body.last_id;
      if (body.episodes.length < EPISODE_PAGE) return;
    }
  }

  async function refreshBuffer(info, now) {
    let state = buffers.get(info.name);
    if (!state || state.createdAt !== info.created_at) {  // new, or deleted and made again
      state = freshState(info);
      buffers.set(info.name, state);
    }
    if (state.previous && now > state.previous.at) {
      const seconds = (now - state.previous.at) / 1000;
      state.rates = {
        insert: Math.max(0, info.total_inserted - state.previous.inserted) / seconds,
        sample: Math.max(0, info.total_sampled - state.previous.sampled) / seconds,
      };
    }
    state.previous = {at: now, inserted: info.total_inserted, sampled: info.total_sampled};
    await Promise.all([refreshWeights(info.name, state), refreshEpisodes(info.name, state)]);
  }

  // ---- rendering ----

  const integer = new Intl.NumberFormat("en-US", {maximumFractionDigits: 0});
  const decimal = new Intl.NumberFormat("en-US", {maximumFractionDigits: 1});

  function rate(value) {
    if (value === undefined) return "—";
    return value < 100 ? decimal.format(value) : integer.format(value);
  }

  function element(tag, attributes = {}, text = null) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text !== null) node.textContent = text;
    return node;
  }

  function fillCell(info) {
    const share = info.capacity > 0 ? info.size / info.capacity : 0;
    const cell = element("td", {class: "fill", "data-field": "fill"});
    const bar = cell.appendChild(element("div", {class: "bar"}));
    // Through the CSSOM: the page's policy refuses inline style attributes.
    bar.appendChild(element("span")).style.width = `${(100 * share).toFixed(2)}%`;
    cell.appendChild(element("div", {class: "text"},
      `${integer.format(info.size)} / ${integer.format(info.capacity)} ` +
      `(${decimal.format(100 * share)}%)`));
    return cell;
  }

  function renderTable(list) {
    const body = document.querySelector("#buffers tbody");
    body.replaceChildren(...list.map((info) => {
      const state = buffers.get(info.name);
      const recent = state.episodes.recent;
      const mean = recent.length ? decimal.format(recent.reduce((a, b) => a + b, 0) / recent.length)
                                 : "—";
      const row = element("tr", {"data-buffer": info.name});
      row.append(
        element("td", {"data-field": "name"}, info.name),
        fillCell(info),
        element("td", {class: "num", "data-field": "capacity"}, integer.format(info.capacity)),
        element("td", {class: "num", "data-field": "insert-rate"}, rate(state.rates?.insert)),
        element("td", {class: "num", "data-field": "sample-rate"}, rate(state.rates?.sample)),
        element("td", {class: "num", "data-field": "weights"},
                state.weights.version === null ? "none" : `v${state.weights.version}`),
        element("td", {class: "num", "data-field": "episodes"},
                integer.format(state.episodes.count)),
        element("td", {class: "num", "data-field": "mean-return"}, mean));
      return row;
    }));
    document.getElementById("buffers").hidden = list.length === 0;
    document.getElementById("no-buffers").hidden = list.length !== 0;
  }

  /** Round step sizes (1, 2 or 5 times a power of ten) covering [low, high]. */
  function ticks(low, high, count) {
    const raw = (high - low) / count;
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
    const first = Math.floor(low / step) * step;
    const last = Math.ceil(high / step) * step;
    const values = [];
    for (let v = first; v <= last + step / 2; v += step) values.push(Number(v.toPrecision(12)));
    return values;
  }

  function svg(tag, attributes = {}, text = null) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    if (text !== null) node.textContent = text;
    return node;
  }

  function chart(name, bySource) {
    const width = 900, height = 260;
    const left = 56, right = 190, top = 14, bottom = 40;
    const plotWidth = width - left - right, plotHeight = height - top - bottom;
    const root = svg("svg", {class: "chart", "data-chart": name, viewBox: `0 0 ${width} ${height}`,
                             role: "img", "aria-label": `episode returns of ${name}`});
    const points = [...bySource.values()].flat();
    if (points.length === 0) {
      root.appendChild(svg("text", {x: width / 2, y: height / 2, "text-anchor": "middle"},
                           "no episodes recorded yet"));
      return root;
    }
    let [xLow, xHigh] = [Math.min(...points.map((p) => p.x)), Math.max(...points.map((p) => p.x))];
    let [yLow, yHigh] = [Math.min(...points.map((p) => p.y)), Math.max(...points.map((p) => p.y))];
    if (xLow === xHigh) xHigh = xLow + 1;
    if (yLow === yHigh) [yLow, yHigh] = [yLow - 1, yHigh + 1];
    const yTicks = ticks(yLow, yHigh, 5);
    [yLow, yHigh] = [yTicks[0], yTicks[yTicks.length - 1]];
    const xTicks = ticks(xLow, xHigh, 8).filter((x) => x >= xLow && x <= xHigh);
    const px = (x) => left + (plotWidth * (x - xLow)) / (xHigh - xLow);
    const py = (y) => top + plotHeight - (plotHeight * (y - yLow)) / (yHigh - yLow);

    for (const y of yTicks) {
      root.appendChild(svg("line", {class: "grid", x1: left, x2: left + plotWidth, y1: py(y), y2: py(y)}));
      root.appendChild(svg("text", {x: left - 6, y: py(y) + 4, "text-anchor": "end"},
                           decimal.format(y)));
    }
    for (const x of xTicks) {
      root.appendChild(svg("text", {x: px(x), y: top + plotHeight + 16, "text-anchor": "middle"},
                           integer.format(x)));
    }
    root.appendChild(svg("line", {class: "axis", x1: left, x2: left + plotWidth,
                                  y1: top + plotHeight, y2: top + plotHeight}));
    root.appendChild(svg("text", {x: left + plotWidth / 2, y: height - 6, "text-anchor": "middle"},
                         "episode, in the order recorded"));
    root.appendChild(svg("text", {x: 14, y: top + plotHeight / 2, "text-anchor": "middle",
                                  transform: `rotate(-90 14 ${top + plotHeight / 2})`}, "return"));

    [...bySource.entries()].forEach(([source, series], index) => {
      const color = COLORS[index % COLORS.length];
      const group = root.appendChild(svg("g", {"data-source": source}));
      group.appendChild(svg("path", {class: "series", stroke: color, d: series.map(
        (p, i) => `${i ? "L" : "M"}${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join("")}));
      if (series.length <= 60) {
        for (const p of series) {
          group.appendChild(svg("circle", {cx: px(p.x), cy: py(p.y), r: 2.5, fill: color}));
        }
      }
      const legendY = top + 8 + index * 18;
      group.appendChild(svg("rect", {x: left + plotWidth + 16, y: legendY - 9, width: 12, height: 4,
                                     fill: color}));
      group.appendChild(svg("text", {class: "legend", x: left + plotWidth + 34, y: legendY - 3},
        `${source.slice(0, 20)}: ${decimal.format(series[series.length - 1].y)}`));
    });
    return root;
  }

  function renderCharts(list) {
    document.getElementById("charts").replaceChildren(...list.map((info) => {
      const section = element("div", {"data-chart-for": info.name});
      section.append(element("h2", {}, `Episode returns: ${info.name}`),
                     chart(info.name, buffers.get(info.name).episodes.bySource));
      return section;
    }));
  }

  // ---- polling and the API key ----

  function showProblem(message) {
    const problem = document.getElementById("problem");
    problem.hidden = message === null;
    problem.textContent = message ?? "";
  }

  function askForKey(message) {
    const held = sessionStorage.getItem(KEY_STORAGE) !== null;
    document.getElementById("key-message").textContent = held
      ? `The API key was refused (${message}). Enter another.`
      : "This service requires an API key.";
    document.getElementById("key-form").hidden = false;
    document.getElementById("updated").textContent = "waiting for an API key";
    document.getElementById("key-input").focus();
  }

  async function poll() {
    try {
      const {buffers: list} = await readJson("buffers");
      const now = performance.now();
      const names = new Set(list.map((info) => info.name));
      for (const name of buffers.keys()) if (!names.has(name)) buffers.delete(name);
      await Promise.all(list.map((info) => refreshBuffer(info, now)));
      renderTable(list);
      renderCharts(list);
      showProblem(null);
      document.getElementById("updated").textContent =
        `updated ${new Date().toLocaleTimeString()} · every ${REFRESH_MS / 1000} s`;
    } catch (error) {
      if (error instanceof Unauthorized) {
        askForKey(error.message);
        return;  // no polling until a key is entered
      }
      showProblem(`Cannot reach the service: ${error.message}`);
    }
    setTimeout(poll, REFRESH_MS);
  }

  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("key-input");
    sessionStorage.setItem(KEY_STORAGE, input.value.trim());
    input.value = "";
    document.getElementById("key-form").hidden = true;
    document.getElementById("forget-key").hidden = false;
    poll();
  });

  document.getElementById("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    location.reload();
  });

  document.getElementById("forget-key").hidden = sessionStorage.getItem(KEY_STORAGE) === null;
  poll();
})();
