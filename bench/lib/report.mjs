// Shared benchmark helpers: robust statistics and a plain-text table with
// ratios against a reference row. Machines here are noisy: quote medians.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const OUT_DIR = join(BENCH_DIR, '.out');
export const PYTHON = process.env.PYTHON ?? 'python3';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/** Runs fn() `rounds` times and returns the median of its numeric results. */
export async function medianOf(rounds, fn) {
  const xs = [];
  for (let i = 0; i < rounds; i++) xs.push(await fn());
  return median(xs);
}

/** Compiles bench/<name>.c with cc -O2 into bench/.out/<name> (once per run). */
export function compileC(name, extra = []) {
  mkdirSync(OUT_DIR, { recursive: true });
  const src = join(BENCH_DIR, `${name}.c`);
  const bin = join(OUT_DIR, name);
  execFileSync('cc', ['-O2', '-o', bin, src, '-lrt', '-lpthread', ...extra], { stdio: 'inherit' });
  return bin;
}

export function fmt(x, digits = 1) {
  if (x === undefined || x === null || Number.isNaN(x)) return '-';
  if (Math.abs(x) >= 1e6) return (x / 1e6).toFixed(2) + ' M';
  if (Math.abs(x) >= 1e4) return (x / 1e3).toFixed(1) + ' k';
  return x.toFixed(digits);
}

/**
 * Prints a table. rows: [{ name, value, unit, note? , ...extra columns }]
 * `ref` names the row that the "vs <ref>" column divides by, and the footer
 * says what that column is; lowerIsBetter (values are times) or not (rates)
 * decides which side of 1 is faster. Without `ref` there is no ratio column
 * and no footer (a caller's own ratio columns are explained in its title).
 */
export function table(title, rows, { ref, lowerIsBetter = true, columns = [] } = {}) {
  const refRow = ref === undefined ? undefined : rows.find((r) => r.name === ref);
  if (ref !== undefined && refRow === undefined) throw new Error(`table "${title}": no row named "${ref}" to compare with`);
  const header = ['', 'median', 'unit', ...columns.map((c) => c.title), ...(refRow ? [`vs ${ref}`] : []), 'note'];
  const body = rows.map((r) => {
    const ratio = refRow ? [r.value ? `${(r.value / refRow.value).toFixed(2)}x` : '-'] : [];
    return [r.name, fmt(r.value), r.unit, ...columns.map((c) => (c.fmt ?? fmt)(r[c.key])), ...ratio, r.note ?? ''];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
  if (refRow) {
    console.log(
      lowerIsBetter
        ? `(vs ${ref}: this row's time / its time; below 1 is faster)`
        : `(vs ${ref}: this row's rate / its rate; above 1 is faster)`,
    );
  }
}

export function haveCommand(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function ensureDir(d) {
  if (!existsSync(d)) mkdirSync(d, { recursive: true });
}

/**
 * Removes, when this process exits for any reason (normal end, an exception,
 * Ctrl-C, SIGTERM, a closed stdout), every /dev/shm entry whose name contains
 * `marker`: segments and glibc's sem.* files that an interrupted benchmark
 * would otherwise leave behind (a 256 MiB segment, for one).
 */
export function removeShmOnExit(marker) {
  const sweep = () => {
    for (const entry of readdirSync('/dev/shm')) {
      if (entry.includes(marker)) rmSync(join('/dev/shm', entry), { force: true });
    }
  };
  process.on('exit', sweep);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      sweep();
      process.kill(process.pid, signal);
    });
  }
  // A closed stdout (`npm run bench | head`) must end the run, not crash it halfway.
  process.stdout.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(1);
  });
}
