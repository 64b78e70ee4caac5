import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ImportConfig } from '../config/app-config.js';
import { ValidationError } from '../db/index.js';
import { clientKey } from '../http/client-key.js';
import { ConcurrencyLimit } from '../http/concurrency-limit.js';
import { STREAMED_BODY } from '../http/http-timeouts.js';
import { ImportProgress, parseImportRows, RowLines, type ImportFormat } from '../http/import-rows.js';
import { KeyedConcurrencyLimit } from '../http/keyed-concurrency-limit.js';
import {
  BadRequestError,
  ImportCapacityError,
  ImportClientCapacityError,
  PreconditionRequiredError,
} from '../http/request-errors.js';
import { limitUpload } from '../http/upload-limiter.js';
import type { NewUser, UserPatch } from './user-input.js';
import type { User, UserStatus } from './user-model.js';
import {
  IMPORT_MEDIA_TYPES,
  createUserBody,
  importHeaders,
  importResponse,
  listUsersQuery,
  noContentResponse,
  patchUserBody,
  patchUserHeaders,
  userIdParams,
  userPageResponse,
  userResponse,
} from './user-schemas.js';
import type { UserService } from './user-service.js';

type IdRequest = FastifyRequest<{ Params: { id: string } }>;

/** Options of {@link registerUserRoutes}. */
export interface UserRoutesOptions {
  /** Largest single import row, characters (the server's `bodyLimit` is a good value). */
  maxImportRowBytes: number;
  /**
   * Bounds of an import (`server.import.*`, and `server.bodyTimeout` as the longest gap between
   * two chunks): deadline, minimum rate (of bytes that become rows), imports at once in all and
   * per client (`clientKey`: the token's subject, else the peer address), rows and bytes per
   * import. Absent: unbounded, as before.
   */
  importLimits?: ImportConfig & { bodyTimeout: number };
}

/** `Retry-After` of an import refused for capacity, seconds: imports last a while; not a hot loop. */
const IMPORT_RETRY_AFTER_S = 5;

/**
 * Registers the users API:
 *
 * | Route | Success | Notes |
 * |---|---|---|
 * | `POST /users` | 201, `Location`, `ETag` | body `{ email, name, status? }` |
 * | `GET /users/:id` | 200, `ETag: "<version>"` | |
 * | `GET /users?status=&limit=&cursor=` | 200 `{ items, nextCursor }` | keyset pages |
 * | `PATCH /users/:id` | 200, `ETag` | `If-Match: "<version>"` required (428 without, 412 stale) |
 * | `DELETE /users/:id` | 204 | soft delete |
 * | `POST /users/import` | 201 `{ imported }` | NDJSON or a JSON array, streamed, all-or-nothing |
 *
 * Every error goes to the one error handler (statuses live there).
 */
export function registerUserRoutes(app: FastifyInstance, users: UserService, opts: UserRoutesOptions): void {
  app.post<{ Body: NewUser }>(
    '/users',
    { schema: { body: createUserBody, response: { 201: userResponse } } },
    async (request, reply) => {
      const user = await users.create(request.body);
      return withVersion(reply.code(201).header('location', `/users/${user.id}`), user).send(userBody(user));
    },
  );

  app.get(
    '/users/:id',
    { schema: { params: userIdParams, response: { 200: userResponse } } },
    async (request: IdRequest, reply) => {
      const user = await users.get(request.params.id);
      return withVersion(reply, user).send(userBody(user));
    },
  );

  app.get<{ Querystring: { status?: UserStatus; limit?: string; cursor?: string } }>(
    '/users',
    { schema: { querystring: listUsersQuery, response: { 200: userPageResponse } } },
    async (request) => {
      const { status, limit, cursor } = request.query;
      try {
        const page = await users.list({
          status,
          limit: limit === undefined ? undefined : Number(limit),
          cursor,
        });
        return { items: page.items.map(userBody), nextCursor: page.nextCursor };
      } catch (err) {
        // The only user input that reaches the repository here is in the query string.
        if (err instanceof ValidationError) throw new BadRequestError('Query is invalid.', queryFields(err));
        throw err;
      }
    },
  );

  app.patch<{ Params: { id: string }; Body: UserPatch }>(
    '/users/:id',
    {
      schema: {
        params: userIdParams,
        headers: patchUserHeaders,
        body: patchUserBody,
        response: { 200: userResponse },
      },
    },
    async (request, reply) => {
      const version = expectedVersion(request.headers['if-match']);
      const user = await users.update(request.params.id, request.body, version);
      return withVersion(reply, user).send(userBody(user));
    },
  );

  app.delete(
    '/users/:id',
    { schema: { params: userIdParams, response: { 204: noContentResponse } } },
    async (request: IdRequest, reply) => {
      await users.remove(request.params.id);
      return reply.code(204).send();
    },
  );

  // Its own scope: JSON and NDJSON bodies arrive as the raw stream (no buffering, no body
  // limit on the whole; `maxImportRowBytes` bounds each row instead). The ordinary request and
  // body timeouts do not apply (`STREAMED_BODY`): `importLimits` bound the upload instead.
  const limits = opts.importLimits;
  const slots = limits ? new ConcurrencyLimit(limits.maxConcurrent) : undefined;
  const clientSlots =
    limits && limits.maxPerClient > 0 ? new KeyedConcurrencyLimit(limits.maxPerClient) : undefined;
  void app.register((scope: FastifyInstance, _opts: object, done: () => void) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(Object.keys(IMPORT_MEDIA_TYPES), (_request, payload, parsed) =>
      parsed(null, payload),
    );
    scope.post(
      '/users/import',
      {
        schema: { headers: importHeaders, response: { 201: importResponse } },
        config: { [STREAMED_BODY]: true },
      },
      async (request, reply) => {
        // A shared slot, then one of the client's own (both given back at the end).
        const release = slots?.tryAcquire();
        const releaseClient = release ? clientSlots?.tryAcquire(clientKey(request)) : undefined;
        const lines = new RowLines();
        const progress = new ImportProgress();
        try {
          if (slots && !release) throw new ImportCapacityError(slots.max, IMPORT_RETRY_AFTER_S);
          if (clientSlots && !releaseClient)
            throw new ImportClientCapacityError(clientSlots.max, IMPORT_RETRY_AFTER_S);
          const format = importFormat(request.headers['content-type']);
          let body = request.body as AsyncIterable<Buffer>;
          if (limits) body = limitUpload(body, uploadLimits(limits, reply.elapsedTime, progress));
          const parsed = parseImportRows(body, format, lines, opts.maxImportRowBytes, {
            maxRows: limits?.maxRows,
            progress,
          });
          const rows = await startedRows(parsed);
          const imported = await users.import(rows);
          return reply.code(201).send({ imported });
        } catch (err) {
          // The body may be half read: discard the rest (so a client still sending gets to read
          // this answer) and close the connection rather than reuse it.
          request.raw.resume();
          void reply.header('connection', 'close');
          throw withLine(err, lines);
        } finally {
          release?.();
          releaseClient?.();
        }
      },
    );
    done();
  });
}

/** The bounds of one upload that started `elapsedMs` ago (from `importLimits`). */
function uploadLimits(
  limits: NonNullable<UserRoutesOptions['importLimits']>,
  elapsedMs: number,
  progress: ImportProgress,
) {
  return {
    maxBytes: limits.maxBytes,
    countedBytes: () => progress.rowBytes,
    deadlineAt: limits.timeout > 0 ? performance.now() - elapsedMs + limits.timeout : Infinity,
    deadlineMs: limits.timeout,
    gapMs: limits.bodyTimeout,
    minBytesPerSecond: limits.minBytesPerSecond,
    graceMs: limits.minRateGracePeriod,
  };
}

/**
 * Waits for the first row before the import takes its pool connection and opens its
 * transaction, so a client that connects and then stalls holds no database resources; the
 * rows come back whole (the first one included).
 */
async function startedRows(rows: AsyncGenerator<unknown>): Promise<AsyncGenerator<unknown>> {
  const first = await rows.next();
  return (async function* () {
    if (first.done) return;
    yield first.value;
    yield* rows;
  })();
}

/** A user as the API shows it: the properties of `userResponse`, nothing else. */
type UserBody = Pick<User, 'id' | 'email' | 'name' | 'status' | 'version' | 'createdAt' | 'updatedAt'>;

/**
 * The response body of one user: a plain object, so the route's compiled serializer reads its
 * properties directly. Given the model itself it would call `User#toJSON()` first (objection's
 * generic clone and format: more CPU than the rest of the serialisation, per user).
 */
function userBody(user: User): UserBody {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    status: user.status,
    version: user.version,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
  };
}

function withVersion(reply: FastifyReply, user: User): FastifyReply {
  return reply.header('etag', `"${user.version}"`);
}

/** The version an `If-Match` header carries: `"3"`, `W/"3"` or `3`. */
function expectedVersion(header: string | undefined): number {
  if (header === undefined || header.trim() === '') {
    throw new PreconditionRequiredError('If-Match with the version (ETag) you last read is required.');
  }
  const m = /^\s*(?:W\/)?"?([1-9][0-9]{0,9})"?\s*$/.exec(header);
  const version = m?.[1] === undefined ? NaN : Number(m[1]);
  if (!Number.isSafeInteger(version) || version > 2_147_483_647) {
    throw new BadRequestError('If-Match must carry one version, e.g. "3".', [
      { field: 'headers.if-match', message: 'must be a version number such as "3"' },
    ]);
  }
  return version;
}

function importFormat(contentType: string | undefined): ImportFormat {
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return IMPORT_MEDIA_TYPES[media as keyof typeof IMPORT_MEDIA_TYPES] ?? 'ndjson';
}

/** Attaches the 1-based body line of the row a bulk-load error names (`rowIndex`) as `line`. */
function withLine(err: unknown, lines: RowLines): unknown {
  const rowIndex = (err as { rowIndex?: unknown } | null)?.rowIndex;
  if (typeof rowIndex !== 'number') return err;
  const line = lines.lineOf(rowIndex);
  return line === undefined ? err : Object.assign(err as object, { line });
}

function queryFields(err: ValidationError): Array<{ field: string; message: string }> {
  const data = (err as { data?: unknown }).data;
  return Object.entries((data ?? {}) as Record<string, unknown>).map(([key, issues]) => {
    const first: unknown = Array.isArray(issues) ? issues[0] : undefined;
    const message = (first as { message?: unknown } | undefined)?.message;
    return { field: `query.${key}`, message: typeof message === 'string' ? message : 'is invalid' };
  });
}
