import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/**
 * The parts of undici the gateway uses: keep-alive connections (driven by `dispatch()`, see
 * client-pool.ts and upstream-call.ts), their connector, and the error classes.
 * Importing the package itself loads every dispatcher, proxy and retry agent, the mocks, the cache
 * stores, fetch, WebSocket and EventSource: ~3 MiB of memory for code the gateway never runs. These
 * are the very modules the package's index loads for the same exports, so they are the same objects
 * (`instanceof errors.X` holds for any undici error). The index also mixes `request()`, `stream()`
 * and the other call styles into every dispatcher, with their Readable bodies: the gateway uses none
 * of them, so they are not loaded.
 * test/core/undici.test.ts checks all of this against the installed version.
 */
const require = createRequire(import.meta.url);

export const Client: typeof Undici.Client = require('undici/lib/dispatcher/client.js');
export type Client = Undici.Client;
export type ClientOptions = Undici.Client.Options;
export const buildConnector: typeof Undici.buildConnector = require('undici/lib/core/connect.js');
export const errors: typeof Undici.errors = require('undici/lib/core/errors.js');
export type { Dispatcher } from 'undici';
