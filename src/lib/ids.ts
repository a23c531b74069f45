import { randomBytes, randomUUID } from 'node:crypto';

/** Opaque random ids with a type prefix (usr_…, key_…): unguessable, so no id enumeration. */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(12).toString('base64url')}`;

export const newRequestId = (): string => `req_${randomUUID().replaceAll('-', '')}`;
