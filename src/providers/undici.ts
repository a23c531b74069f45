import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/**
 * The parts of undici the gateway uses: keep-alive pools with `request()`, and the error classes.
 * Importing the package itself loads every dispatcher, proxy and retry agent, the mocks, the cache
 * stores, fetch, WebSocket and EventSource: ~3 MiB of memory for code the gateway never runs. These
 * are the very modules the package's index loads for the same exports, so they are the same objects
 * (`instanceof errors.X` holds for any undici error). The index also mixes `request()`, `stream()`
 * and the other call styles into every dispatcher; that is done here as well.
 * test/core/undici.test.ts checks all of this against the installed version.
 */
const require = createRequire(import.meta.url);

export const Pool: typeof Undici.Pool = require('undici/lib/dispatcher/pool.js');
export type Pool = Undici.Pool;
export const errors: typeof Undici.errors = require('undici/lib/core/errors.js');
export type { Dispatcher } from 'undici';

Object.assign(require('undici/lib/dispatcher/dispatcher.js').prototype, require('undici/lib/api/index.js'));
