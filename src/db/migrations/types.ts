import type { ColumnDefinitionBuilder } from 'kysely';
import type { Dialect } from '../database.js';

/** Auto-increment integer primary keys differ per dialect: SQLite autoincrement, PostgreSQL bigserial. */
export const serialType = (dialect: Dialect) => (dialect === 'postgres' ? 'bigserial' : 'integer');
export const serialId = (dialect: Dialect) => (c: ColumnDefinitionBuilder) =>
  dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement();
