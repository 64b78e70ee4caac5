/** What every gid of ours starts with: recovery touches no prepared transaction without it. */
export const GID_PREFIX = 'pgdl2pc_';

/** The parts of a gid: `pgdl2pc_<coordinator>_<xid>_<participant index>`. */
export interface GidParts {
  /** 8 hex digits naming the coordinator database (its cluster's system identifier and database oid, hashed). */
  coordinator: string;
  /** The coordinator transaction that holds the decision record (`xid8`, decimal). */
  xid: string;
  /** The participant's position in the unit of work (its name is in the decision record). */
  index: number;
}

const GID_PATTERN = /^pgdl2pc_([0-9a-f]{8})_(\d{1,20})_(\d{1,4})$/;

/**
 * The global id of one unit of work (`pgdl2pc_<coordinator>_<xid>`), the prefix of its gids.
 * Unique: an `xid8` is never reused within the coordinator's cluster, and the coordinator part
 * keeps two coordinators sharing a participant apart.
 */
export function globalIdOf(coordinator: string, xid: string): string {
  return `${GID_PREFIX}${coordinator}_${xid}`;
}

/**
 * The gid of participant `index` (gids are unique per server, and two participants may be
 * databases of one server). Only hex digits, digits and `_`: safe to put in the statement's
 * literal, as `PREPARE TRANSACTION` takes no bind parameter.
 */
export function gidOf(coordinator: string, xid: string, index: number): string {
  return `${globalIdOf(coordinator, xid)}_${index}`;
}

/** The parts of a gid of ours, or undefined for any other gid (another tool's, a person's). */
export function parseGid(gid: string): GidParts | undefined {
  const m = GID_PATTERN.exec(gid);
  if (!m) return undefined;
  return { coordinator: m[1]!, xid: m[2]!, index: Number(m[3]) };
}
