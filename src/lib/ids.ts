import { randomFillSync } from 'node:crypto';

// Random bytes drawn in blocks: one system call per 341 ids instead of one per id (hot path).
const POOL = Buffer.alloc(12 * 341);
let offset = POOL.length;

/** Opaque random ids with a type prefix (usr_…, key_…): unguessable, so no id enumeration. */
export function newId(prefix: string): string {
  if (offset + 12 > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const id = POOL.toString('base64url', offset, offset + 12);
  offset += 12;
  return `${prefix}_${id}`;
}

/** Random bytes for request ids, drawn like POOL's. */
const REQ_POOL = Buffer.alloc(10 * 400);
let reqOffset = REQ_POOL.length;

/**
 * Request ids, `req_` + 32 hex digits: the time in ms (12 digits) then 80 random bits. Time first,
 * so ids sort by creation: the unique index of usage records by request id grows at its end, as the
 * table does, instead of taking every insert at a random page (a page read and a page written to the
 * WAL per request once the index outgrows the page cache). Still unguessable: 80 random bits.
 */
export function newRequestId(): string {
  if (reqOffset + 10 > REQ_POOL.length) {
    randomFillSync(REQ_POOL);
    reqOffset = 0;
  }
  const rand = REQ_POOL.toString('hex', reqOffset, reqOffset + 10);
  reqOffset += 10;
  return `req_${Date.now().toString(16).padStart(12, '0')}${rand}`;
}
