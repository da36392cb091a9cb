/**
 * Child process of bench/check: explore one configuration of the composed migration system with our
 * explorer (`ours`) or with xstate/graph's getAdjacencyMap (`xstate`), print one JSON line. Run in a child
 * so a deadline can kill it and each run starts with a fresh heap.
 */
import { getAdjacencyMap } from 'xstate/graph';
import { explore } from '../src/explorer/index.js';
import { type MigrationOptions, migrationSystem } from '../src/systems/migration.js';
import { composedMachine } from './composedMachine.js';

const [engine, json] = process.argv.slice(2) as ['ours' | 'xstate', string];
const o = JSON.parse(json) as MigrationOptions;
const spec = migrationSystem(o);
if (engine === 'ours') {
  const r = explore(spec, { progress: false });
  const out = { states: r.states, transitions: r.transitions, seconds: r.seconds, statesPerSecond: r.statesPerSecond, bytesPerState: r.bytesPerState, holds: r.properties.every((p) => p.holds) };
  process.stdout.write(JSON.stringify(out) + '\n');
} else {
  const { machine, events } = composedMachine({ ...spec, invariants: [] });
  const t0 = performance.now();
  const adj = getAdjacencyMap(machine, { events });
  const seconds = (performance.now() - t0) / 1000;
  const states = Object.keys(adj).length;
  process.stdout.write(JSON.stringify({ states, seconds, statesPerSecond: Math.round(states / seconds) }) + '\n');
}
