import { randomFillSync, randomUUID } from 'node:crypto';

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

export const newRequestId = (): string => `req_${randomUUID().replaceAll('-', '')}`;
