#!/usr/bin/env node
// Repeats one JSON-RPC request against an endpoint and reports throughput and latency:
//   node scripts/rpc-bench.mjs URL BODY [--requests N] [--concurrency C] [--token T]
// BODY is the JSON-RPC request (one object). Every answer must be a JSON-RPC result (an
// error answer stops the run). No dependencies: Node's http with keep-alive connections.
import http from "node:http";

const args = process.argv.slice(2);
const flag = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const requests = Number(flag("--requests", "10000"));
const concurrency = Number(flag("--concurrency", "16"));
const token = flag("--token", undefined);
const [url, body] = args;
if (!url || !body) {
  console.error("usage: rpc-bench.mjs URL BODY [--requests N] [--concurrency C] [--token T]");
  process.exit(2);
}
JSON.parse(body);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const target = new URL(url);
const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(body) };
if (token) headers.authorization = `Bearer ${token}`;

function one() {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const req = http.request(
      { host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent, headers },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          const reply = JSON.parse(text);
          if (res.statusCode !== 200 || reply.error) reject(new Error(`HTTP ${res.statusCode}: ${text}`));
          else resolve([Number(process.hrtime.bigint() - t) / 1e6, text.length]);
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const latencies = [];
let next = 0;
let bytes = 0;
const start = process.hrtime.bigint();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      next++;
      const [ms, len] = await one();
      latencies.push(ms);
      bytes = len;
    }
  }),
);
const wall = Number(process.hrtime.bigint() - start) / 1e9;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * p) - 1)];
console.log(
  JSON.stringify({
    requests,
    concurrency,
    per_s: Math.round(requests / wall),
    p50_ms: +pct(0.5).toFixed(3),
    p99_ms: +pct(0.99).toFixed(3),
    reply_bytes: bytes,
  }),
);
agent.destroy();
