#!/usr/bin/env node
// One measured re-evaluation, in its own process so its peak RSS is the gate's alone. Opens the
// data folder as `portcullis serve` would (metadata, a Gate on the built-in policy), notes the
// database's version and generation (what startMonitor does), runs `portcullis db import` of the
// update in a child process (as an operator or the scheduled update would), then times one
// `gate.checkDatabase()`: the change log lookup, every affected image matched and evaluated again,
// its verdict written, the events emitted. Prints one JSON line.
//   node bench/gate/reeval-child.mjs ROOT DATA_DIR UPDATE_ZIP [POLICY_FILE (empty: the built-in policy)]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';

const [root, dataDir, updateZip, policyFile] = process.argv.slice(2);
const dist = (p) => import(pathToFileURL(join(root, 'dist', p)).href);
const { Gate, PolicySource } = await dist('gate/index.js');
const { SqliteRegistryMetadata, FsBlobStore, blobRoot } = await dist('store/index.js');
const { benchPolicy } = await import('./lib/policy.mjs');
const { projectOf } = await dist('registry/access/index.js');

const hwmKb = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
const rssKb = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);

const metadata = await SqliteRegistryMetadata.open(dataDir);
const events = { verdict_changed: 0, new_advisory_affects: 0, affectsArtifacts: 0 };
const gate = new Gate({
  metadata,
  blobs: new FsBlobStore(blobRoot(dataDir)),
  dataDir,
  policy: new PolicySource(
    () => benchPolicy(root, policyFile),
    () => [],
  ),
  projectOf,
  publicUrl: 'http://127.0.0.1:5000',
  // Nothing is analysed here: no worker thread (its heap would count in the peak RSS).
  analysisProcess: false,
  onEvent: (e) => {
    if (e.type in events) events[e.type]++;
    if (e.type === 'new_advisory_affects') events.affectsArtifacts += e.artifacts.length;
  },
});
// Records the version and generation in force; the interval never fires during the run.
gate.startMonitor(2 ** 31 - 1);
const importStarted = performance.now();
execFileSync(
  process.execPath,
  [join(root, 'bin/portcullis.js'), 'db', 'import', updateZip, '--data', dataDir],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
const importMs = performance.now() - importStarted;
const before = { hwmKb: hwmKb(), rssKb: rssKb() };
// Resets VmHWM, so the peak below is the re-evaluation's own (Linux 4.0+).
let hwmReset = true;
try {
  writeFileSync('/proc/self/clear_refs', '5');
} catch {
  hwmReset = false;
}
const t0 = performance.now();
const evaluated = await gate.checkDatabase();
const ms = performance.now() - t0;
const out = {
  evaluated,
  ms,
  importMs,
  peakRssMb: (hwmKb() * 1024) / 1e6,
  rssBeforeMb: (before.rssKb * 1024) / 1e6,
  hwmReset,
  events,
};
await gate.close();
await metadata.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
