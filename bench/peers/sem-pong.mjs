// Responder for the semaphore ping-pong benchmark: waits on ping, posts pong.
// usage: sem-pong.mjs <ping> <pong> <rounds> <async|sync>
import { Semaphore } from '../../dist/index.js';

const [pingName, pongName, rounds, mode] = process.argv.slice(2);
const ping = new Semaphore(pingName, { create: false });
const pong = new Semaphore(pongName, { create: false });
const n = Number(rounds);
const t0 = process.cpuUsage();
if (mode === 'sync') {
  for (let i = 0; i < n; i++) {
    ping.acquireSync();
    pong.release();
  }
} else {
  for (let i = 0; i < n; i++) {
    await ping.acquire();
    pong.release();
  }
}
const c = process.cpuUsage(t0);
process.stdout.write(`${(c.user + c.system) / n}\n`);
ping.close();
pong.close();
