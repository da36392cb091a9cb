/**
 * Child process of bench/check: explore one configuration of the composed migration system with our
 * explorer (`ours`) or with xstate/graph's getAdjacencyMap (`xstate`), or run the whole of `check
 * --design` (`design`: the finite-REINIT system and the storm run), print one JSON line. Run in a child
 * so a deadline can kill it and each run starts with a fresh heap.
 */
import { getAdjacencyMap } from 'xstate/graph';
import { explore } from '../src/explorer/index.js';
import { type MigrationOptions, migrationSystem } from '../src/systems/migration.js';
import { type DesignCheckOptions, checkDesign } from '../src/systems/reinit.js';
import { composedMachine } from './composedMachine.js';

const [engine, json] = process.argv.slice(2) as ['ours' | 'xstate' | 'design', string];
if (engine === 'design') {
  // what `check --design` runs: the finite-REINIT system for every claim but L2, the storm run for L2
  // with the memory of `check --memory-mb 16384` (the storm run at N = 6 holds about 8 GB)
  const c = checkDesign(JSON.parse(json) as DesignCheckOptions, { progress: false, memoryBudget: 16 * 1024 ** 3 });
  const seconds = c.finite.seconds + c.storm.seconds;
  const states = c.finite.states + c.storm.states;
  const out = {
    states,
    transitions: c.finite.transitions + c.storm.transitions,
    seconds,
    statesPerSecond: Math.round(states / seconds),
    bytesPerState: c.storm.bytesPerState,
    stormStates: c.storm.states,
    decided: c.properties.every((p) => p.verdict !== 'unknown'),
    holds: c.properties.every((p) => p.holds),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}
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
