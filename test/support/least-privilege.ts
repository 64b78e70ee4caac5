import { readFileSync } from 'node:fs';

/** The roles script the docs show (docs/migrations.md), run by the least-privilege test as it is. */
const LEAST_PRIVILEGE_SQL = 'examples/least-privilege.sql';

/** The psql variables the script takes (`DBNAME` is psql's own: the database connected to). */
export interface LeastPrivilegeVariables {
  DBNAME: string;
  owner_role: string;
  owner_password: string;
  app_role: string;
  app_password: string;
  schema: string;
}

/**
 * The script with its psql variables filled in as psql does it: `:"name"` becomes a quoted
 * identifier, `:'name'` a quoted literal. A variable the script uses but `vars` lacks is an error.
 */
export function leastPrivilegeScript(vars: LeastPrivilegeVariables): string {
  const values = vars as unknown as Record<string, string>;
  const value = (name: string): string => {
    const v = values[name];
    if (v === undefined) throw new Error(`${LEAST_PRIVILEGE_SQL} uses :${name}, which has no value`);
    return v;
  };
  return readFileSync(LEAST_PRIVILEGE_SQL, 'utf8')
    .replace(/:"(\w+)"/g, (_m, name: string) => `"${value(name).replaceAll('"', '""')}"`)
    .replace(/:'(\w+)'/g, (_m, name: string) => `'${value(name).replaceAll("'", "''")}'`);
}
