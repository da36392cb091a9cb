import { migrationSystem } from './dist/src/systems/migration.js';
import { explore } from './dist/src/explorer/index.js';
const sets=['STOP_COPY','STOP_COPY|P2P','STOP_COPY|PRE_COPY','STOP_COPY|P2P|PRE_COPY'];
for (const n of [1,2,3]) for (const f of sets) for (const ack of ['off','legacy','per-device']) {
  if (n>1 && !f.includes('P2P')) continue;
  const t=Date.now();
  const r = explore(migrationSystem({ devices: Array(n).fill(f), ack }), {});
  const bad = r.properties.filter(p=>!p.holds).map(p=>p.name);
  console.log(JSON.stringify({n,f,ack,states:r.states,ms:Date.now()-t,violated:bad}));
}
