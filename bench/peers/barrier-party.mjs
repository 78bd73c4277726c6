// Peer of bench/event.bench.mjs: one party of a Barrier, for `rounds` rounds.
import { Barrier } from '../../dist/index.js';
const [name, parties, rounds] = process.argv.slice(2);
const b = new Barrier(name, { parties: Number(parties) });
for (let i = 0; i < Number(rounds) + 1; i++) await b.wait();
b.close();
