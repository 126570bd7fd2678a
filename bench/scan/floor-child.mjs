#!/usr/bin/env node
// The floor again, in a child process the parent starts with the analysis processes' allocator
// settings (GLIBC_TUNABLES, see src/analyse/heap.ts), so the scanner's figures can be read against
// a floor that had the same help. Usage (run by run.mjs):
//   node bench/scan/floor-child.mjs LAYERS_JSON WARM_UP RUNS
// LAYERS_JSON is the array imageLayers() returns. Prints {"runs":[ms,...]} on stdout.
import { floorRuns } from './lib/floor.mjs';

const [layersJson, warmUpText, runsText] = process.argv.slice(2);
const layers = JSON.parse(layersJson);
const runs = (await floorRuns(layers, Number(warmUpText), Number(runsText))).map((f) => f.ms);
process.stdout.write(`${JSON.stringify({ runs })}\n`);
