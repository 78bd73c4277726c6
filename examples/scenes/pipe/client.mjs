// Scene 4 helper: a node client of the Listener, in its own process.
import { Client } from '../../../dist/index.js';

const [address, key] = process.argv.slice(2);
const conn = await Client(address, { authkey: key, timeout: 10_000 });
await conn.send({ hello: 'from node', who: 'node client' });
const reply = await conn.recv();
console.log(`  [node client ${process.pid}] got ${JSON.stringify(reply)}`);
conn.close();
