/** Child process of bench/explore: explore K parallel devices with xstate/graph, print one JSON line. */
import { getAdjacencyMap } from 'xstate/graph';
import { parallelDevices } from './deviceSystem.js';

const k = Number(process.argv[2]);
const { machine, events } = parallelDevices(k);
const t0 = performance.now();
const adj = getAdjacencyMap(machine, { events });
const seconds = (performance.now() - t0) / 1000;
const states = Object.keys(adj).length;
process.stdout.write(JSON.stringify({ devices: k, states, seconds, statesPerSecond: Math.round(states / seconds) }) + '\n');
