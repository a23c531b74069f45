import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * V8 settings that keep the gateway's resident memory small: ~80 MiB idle against ~104 without them.
 * They are not free: two fresh gateways side by side, one without them, took ~4 % less CPU per request
 * in steady state (eight interleaved 10-second cells of 32 connections, 405 against 422 µs; session 17
 * in docs/performance-history.md); taking out one of the settings below alone moved it within noise.
 * Under load the RSS of both is the same (~141–145 MiB).
 *
 * Starting allocates ~40 MB, most of which lives on (code, routes, caches). By default V8 takes that
 * survival rate for a busy process and grows the young generation to its maximum (2 × 16 MiB) within
 * the first second, where it stays until V8's idle GC shrinks it 10–30 s later; the garbage the start
 * leaves in the old generation waits for the next full GC; and the compilers optimize functions that
 * are hot only while starting (migrations, schema building), whose compiler memory stays with the
 * process.
 *
 * `beginStartup()`, called before the gateway's modules are loaded, keeps the young generation at its
 * initial size and the optimizing (TurboFan) and baseline (Sparkplug) compilers off while starting;
 * start-up takes no longer. `endStartup()`, called once the gateway is built and before it listens,
 * runs one full, compacting GC (a few tens of ms, before any request) and turns all of that back to
 * V8's defaults, so traffic sizes the young generation and optimizes code exactly as before.
 *
 * One setting stays: WebAssembly is compiled by the baseline compiler (Liftoff) only. The only
 * WebAssembly here is undici's HTTP/1.1 parser (llhttp); optimizing it takes ~10 MiB of compiler
 * memory on the first upstream request, which the process keeps, for no measurable gain (parsing a
 * response head is a tiny part of a request).
 *
 * These are V8 flags set at run time, each read when it applies: `semi-space-growth-factor` each time
 * V8 resizes the young generation (2 is V8's default), `turbofan` and `sparkplug` each time a function
 * could be compiled, `liftoff-only` when a WebAssembly module is compiled, `compact-on-every-full-gc`
 * by that one GC, and `expose-gc` while a context is created to obtain `gc`.
 */
export function beginStartup(): void {
  setFlagsFromString('--liftoff-only');
  setFlagsFromString('--semi-space-growth-factor=1');
  setFlagsFromString('--no-turbofan');
  setFlagsFromString('--no-sparkplug');
}

export function endStartup(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  setFlagsFromString('--no-expose-gc');
  setFlagsFromString('--compact-on-every-full-gc');
  gc();
  setFlagsFromString('--no-compact-on-every-full-gc');
  setFlagsFromString('--semi-space-growth-factor=2');
  setFlagsFromString('--turbofan');
  setFlagsFromString('--sparkplug');
}
