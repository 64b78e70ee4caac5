import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Where a pool connection was acquired, for leak detection: the stack captured when the
 * acquire was asked for, and the application frames in it.
 *
 * A transaction's acquire is reached synchronously from `withTransaction`/`beginTx` and a
 * repository's from its method, so the caller's own frames are on that stack, below knex's,
 * tarn's and this layer's. A query the application `await`s directly on a builder starts from
 * knex's deferred `then` and has no application frame: its stack names knex's Runner instead.
 */

/** Frames kept per capture: enough to get past this layer, knex and tarn (about 20) to the caller. */
const CAPTURED_FRAMES = 50;
/** Application frames kept in a report. */
const REPORTED_FRAMES = 8;

/** This layer's own directory (`src/db/` under tsx, `dist/db/` after a build), as a path and as a URL. */
const LAYER_DIR = fileURLToPath(new URL('../', import.meta.url));
const LAYER_URL = pathToFileURL(LAYER_DIR).href;

/** Frames that are never the application's: dependencies, Node's own, and frames without a file. */
const FOREIGN_FRAME = /node_modules[\\/]|\(node:|at node:|\(<anonymous>\)|\(native\)/;
/** knex's own frames: what a report shows when no application frame is on the stack. */
const KNEX_FRAME = /node_modules[\\/]knex[\\/]/;

/**
 * Captures the current stack, deep enough to reach the caller. Formatting is left for later:
 * V8 renders `stack` only when it is first read, so an unreported capture costs only the walk.
 */
export function captureAcquireSite(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = CAPTURED_FRAMES;
  try {
    return new Error('acquired here');
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/**
 * The application frames of `site`, under an `acquired here` line: every frame of knex, tarn,
 * pg, Node and this layer left out. Without any application frame, knex's frames (the kind of
 * holder: a query's `Runner`, a `Transaction`).
 */
export function applicationStack(site: Error): string {
  const frames = (site.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at '));
  const own = frames.filter(isApplicationFrame);
  const shown = own.length > 0 ? own : frames.filter((line) => KNEX_FRAME.test(line));
  return ['acquired here', ...shown.slice(0, REPORTED_FRAMES)].join('\n');
}

/** The first application frame of `site` without its `at ` (`handler (/app/src/x.ts:10:5)`), if any. */
export function applicationCaller(site: Error): string | undefined {
  const frame = (site.stack ?? '').split('\n').find(isApplicationFrame);
  return frame?.trim().replace(/^at /, '');
}

function isApplicationFrame(line: string): boolean {
  return (
    line.trimStart().startsWith('at ') &&
    !FOREIGN_FRAME.test(line) &&
    !line.includes(LAYER_DIR) &&
    !line.includes(LAYER_URL)
  );
}
