#!/usr/bin/env node
// A minimal closed-loop HTTP load generator for requests wrk and autocannon cannot make: both hang
// on HEAD responses that carry a Content-Length (they wait for a body that never comes). Each of
// `connections` keep-alive connections sends the next request as soon as the previous answer ends.
// Usage: node http-load.mjs METHOD URL CONNECTIONS SECONDS HEADERS_JSON  → one JSON line on stdout.
import { Agent, request } from 'node:http';

const [method, url, connections, seconds, headersJson] = process.argv.slice(2);
const headers = JSON.parse(headersJson ?? '{}');
const agent = new Agent({ keepAlive: true, maxSockets: Number(connections) });
const latencies = [];
let non2xx = 0;
let errors = 0;
const t0 = process.hrtime.bigint();
const end = t0 + BigInt(Math.round(Number(seconds) * 1e9));

function one() {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const req = request(url, { method, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => {
        latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
        if (res.statusCode < 200 || res.statusCode >= 400) non2xx++;
        resolve();
      });
    });
    req.on('error', () => {
      errors++;
      resolve();
    });
    req.end();
  });
}

async function worker() {
  while (process.hrtime.bigint() < end) await one();
}

await Promise.all(Array.from({ length: Number(connections) }, worker));
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] : 0;
agent.destroy();
process.stdout.write(
  JSON.stringify({
    requests: latencies.length,
    seconds: secs,
    p50Ms: pct(50),
    p99Ms: pct(99),
    non2xx,
    errors,
  }) + '\n',
);
