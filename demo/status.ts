/**
 * The operators' status page: polls this node's Prometheus /metrics, parses
 * the text format, and draws counts, rates and relay latency as small SVG
 * charts. No chart library: a polyline per series is all it takes.
 * @module
 */

/** One sample: metric name and labels, and its value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text exposition format (comments and blank lines skipped). */
export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    if (match[3]) {
      for (const pair of match[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[pair[1]!] = pair[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      }
    }
    const value = match[4] === '+Inf' ? Infinity : match[4] === '-Inf' ? -Infinity : Number(match[4]);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

const sum = (samples: Sample[], name: string, labels: Record<string, string> = {}): number =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);

interface Reading {
  at: number;
  sockets: number;
  shares: number;
  launches: number;
  answers: number;
  errors: number;
  latencySum: number;
  latencyCount: number;
  errorsByCode: Map<string, number>;
}

function read(samples: Sample[], at: number): Reading {
  const errorsByCode = new Map<string, number>();
  for (const s of samples) if (s.name === 'sigserve_errors_total' && s.labels['code']) errorsByCode.set(s.labels['code'], s.value);
  return {
    at,
    sockets: sum(samples, 'sigserve_connected_sockets'),
    shares: sum(samples, 'sigserve_active_shares'),
    launches: sum(samples, 'sigserve_relayed_total', { kind: 'launch' }),
    answers: sum(samples, 'sigserve_relayed_total', { kind: 'answer' }),
    errors: sum(samples, 'sigserve_errors_total'),
    latencySum: sum(samples, 'sigserve_relay_latency_seconds_sum'),
    latencyCount: sum(samples, 'sigserve_relay_latency_seconds_count'),
    errorsByCode,
  };
}

const POINTS = 60;
const LATENCY_WINDOW = 10_000;
const WIDTH = 300;
const HEIGHT = 80;
const ns = 'http://www.w3.org/2000/svg';

class Chart {
  readonly #values: (number | null)[] = [];
  readonly #line: SVGPathElement;
  readonly #max: HTMLSpanElement;
  readonly #output: HTMLOutputElement;

  constructor(
    id: string,
    readonly format: (v: number) => string,
  ) {
    const figure = document.getElementById(id)!;
    this.#output = figure.querySelector('output')!;
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    // The figcaption carries the current value in text; the drawing is decoration.
    svg.setAttribute('aria-hidden', 'true');
    const base = document.createElementNS(ns, 'line');
    base.setAttribute('x1', '0');
    base.setAttribute('x2', String(WIDTH));
    base.setAttribute('y1', String(HEIGHT - 1));
    base.setAttribute('y2', String(HEIGHT - 1));
    base.setAttribute('class', 'axis');
    this.#line = document.createElementNS(ns, 'path');
    this.#line.setAttribute('class', 'series');
    // Text outside the SVG: the drawing stretches to any width, text must not.
    this.#max = document.createElement('span');
    this.#max.className = 'scale';
    this.#max.setAttribute('aria-hidden', 'true');
    svg.append(base, this.#line);
    figure.append(this.#max, svg);
  }

  /** Adds the newest value; null leaves a gap (nothing to measure then). */
  push(value: number | null): void {
    this.#values.push(value);
    if (this.#values.length > POINTS) this.#values.shift();
    const known = this.#values.filter((v): v is number => v !== null);
    const top = Math.max(1e-9, ...known) * 1.15;
    const step = WIDTH / (POINTS - 1);
    const offset = POINTS - this.#values.length;
    let d = '';
    let drawing = false;
    this.#values.forEach((v, i) => {
      if (v === null) {
        drawing = false;
        return;
      }
      const x = ((offset + i) * step).toFixed(1);
      const y = (HEIGHT - 2 - (v / top) * (HEIGHT - 6)).toFixed(1);
      // A lone point still shows: a zero-length segment with round caps.
      d += drawing ? `L${x} ${y}` : `M${x} ${y}h0.01`;
      drawing = true;
    });
    this.#line.setAttribute('d', d);
    this.#max.textContent = `max ${this.format(Math.max(0, ...known))}`;
    this.#output.value = value === null ? '–' : this.format(value);
  }
}

const integer = (v: number): string => String(Math.round(v));
const rate = (v: number): string => (v >= 10 ? v.toFixed(0) : v.toFixed(1));
const ms = (v: number): string => (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2));

function start(): void {
  const params = new URLSearchParams(location.search);
  const interval = Math.min(60, Math.max(0.5, Number(params.get('interval')) || 2));
  document.getElementById('interval')!.textContent = String(interval);
  document.getElementById('window')!.textContent = formatWindow(interval * POINTS);
  const charts = {
    sockets: new Chart('chart-sockets', integer),
    shares: new Chart('chart-shares', integer),
    launches: new Chart('chart-launches', rate),
    answers: new Chart('chart-answers', rate),
    latency: new Chart('chart-latency', ms),
    errors: new Chart('chart-errors', rate),
  };
  const summary = document.getElementById('summary')!;
  const history: Reading[] = [];

  const poll = async (): Promise<void> => {
    try {
      const response = await fetch('/metrics', { cache: 'no-store' });
      if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
      const now = read(parseMetrics(await response.text()), performance.now());
      charts.sockets.push(now.sockets);
      charts.shares.push(now.shares);
      const previous = history.at(-1);
      if (previous) {
        const seconds = Math.max(0.001, (now.at - previous.at) / 1000);
        charts.launches.push(Math.max(0, now.launches - previous.launches) / seconds);
        charts.answers.push(Math.max(0, now.answers - previous.answers) / seconds);
        charts.errors.push(Math.max(0, now.errors - previous.errors) / seconds);
        // Latency is a mean over the last LATENCY_WINDOW ms: one poll often relays nothing.
        const since = history.find((r) => now.at - r.at <= LATENCY_WINDOW) ?? previous;
        const relayed = now.latencyCount - since.latencyCount;
        charts.latency.push(relayed > 0 ? ((now.latencySum - since.latencySum) / relayed) * 1000 : null);
      }
      history.push(now);
      while (history.length > 0 && now.at - history[0]!.at > LATENCY_WINDOW) history.shift();
      renderErrors(now.errorsByCode);
      summary.textContent = `Up to date at ${new Date().toLocaleTimeString()}: ${now.sockets} connection${now.sockets === 1 ? '' : 's'}, ${now.shares} share${now.shares === 1 ? '' : 's'}, ${now.launches} launches and ${now.answers} answers relayed since start.`;
      summary.dataset['state'] = 'ok';
    } catch (error) {
      summary.textContent = `Cannot read /metrics: ${error instanceof Error ? error.message : String(error)}. Retrying…`;
      summary.dataset['state'] = 'error';
    }
  };
  void poll();
  setInterval(() => void poll(), interval * 1000);
}

function formatWindow(seconds: number): string {
  return seconds >= 120 ? `${Math.round(seconds / 60)} minutes` : `${Math.round(seconds)} seconds`;
}

function renderErrors(byCode: Map<string, number>): void {
  const body = document.querySelector('#errors tbody')!;
  const rows = [...byCode].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  if (rows.length === 0) {
    const row = document.createElement('tr');
    const cell = document.createElement('td');
    cell.colSpan = 2;
    cell.textContent = 'none';
    row.append(cell);
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(
    ...rows.map(([code, n]) => {
      const row = document.createElement('tr');
      const c = document.createElement('td');
      c.textContent = code;
      const v = document.createElement('td');
      v.textContent = String(n);
      row.append(c, v);
      return row;
    }),
  );
}

if (typeof document !== 'undefined') start();
