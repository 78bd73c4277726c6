// piscina's task for bench/process.bench.mjs: the same trivial function.
export default function square(x) {
  return x * x;
}
