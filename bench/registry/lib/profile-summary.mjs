#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`, as `run.mjs --cpu-prof` writes them): the
// functions with the most self time and the most inclusive time, in milliseconds and percent.
//   node bench/registry/lib/profile-summary.mjs FILE.cpuprofile [--top N] [--from MS] [--to MS]
// --from/--to keep only samples in that window (milliseconds since the profile started).
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
let top = 30;
let from = 0;
let to = Number.POSITIVE_INFINITY;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else if (args[i] === '--from') from = Number(args[++i]);
  else if (args[i] === '--to') to = Number(args[++i]);
  else files.push(args[i]);
}
if (files.length === 0) {
  console.error('usage: profile-summary.mjs FILE.cpuprofile [--top N] [--from MS] [--to MS]');
  process.exit(2);
}

for (const file of files) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n) => {
    const f = n.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'} ${where}`.trim();
  };
  const self = new Map();
  const incl = new Map();
  let total = 0;
  let t = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = (prof.timeDeltas[i] ?? 0) / 1000;
    t += dt;
    if (t < from || t > to) continue;
    const node = byId.get(prof.samples[i]);
    if (!node) continue;
    total += dt;
    const l = label(node);
    self.set(l, (self.get(l) ?? 0) + dt);
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const li = label(byId.get(id));
      if (seen.has(li)) continue;
      seen.add(li);
      incl.set(li, (incl.get(li) ?? 0) + dt);
    }
  }
  const idle = (self.get('(idle)') ?? 0) + (self.get('(program)') ?? 0) * 0;
  console.log(`\n${file}: ${total.toFixed(0)} ms sampled, ${(total - idle).toFixed(0)} ms not idle`);
  const show = (title, m) => {
    console.log(`\n${title}`);
    const busy = total - idle;
    for (const [l, ms] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      if (l === '(idle)' || l === '(root)') continue;
      console.log(`${ms.toFixed(1).padStart(9)} ms ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${l}`);
    }
  };
  show('self time', self);
  show('inclusive time', incl);
}
