// Node's own event-loop wake-up, for bench/wakeup.bench.mjs: another process
// reads the clock and writes it down a pipe; this process reads the clock
// when its 'data' callback runs. Paced as wake.mjs paces its samples (we ask
// over a pipe, both sides idle in between). Prints {"median": µs, "p99": µs}.
//   pipe-hop.mjs <samples> [warmup]   (warmup: hops first, unmeasured)
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

if (process.argv[2] === 'child') {
  process.stdin.on('data', () => {
    process.stdout.write(`${process.hrtime.bigint()}\n`);
  });
} else {
  const samples = Number(process.argv[2] ?? 300);
  const warmup = Number(process.argv[3] ?? 0);
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'child'], { stdio: ['pipe', 'pipe', 'inherit'] });
  let got = null;
  child.stdout.setEncoding('utf8').on('data', (d) => {
    const t1 = process.hrtime.bigint();
    got?.(Number(t1 - BigInt(d.trim().split('\n').pop())) / 1e3);
  });
  await new Promise((r) => setTimeout(r, 200));
  const lat = [];
  for (let i = 0; i < warmup + samples; i++) {
    const p = new Promise((r) => (got = r));
    child.stdin.write('x');
    const v = await p;
    if (i >= warmup) lat.push(v);
  }
  child.kill();
  lat.sort((a, b) => a - b);
  const at = (q) => lat[Math.min(lat.length - 1, Math.floor(lat.length * q))];
  process.stdout.write(`${JSON.stringify({ median: at(0.5), p99: at(0.99) })}\n`);
}
