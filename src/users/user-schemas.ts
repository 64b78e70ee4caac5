import {
  EMAIL_MAX_LENGTH,
  LISTED_USER_STATUSES,
  NAME_MAX_LENGTH,
  NAME_MIN_LENGTH,
  USER_STATUSES,
  WRITABLE_USER_STATUSES,
} from './user-model.js';

/**
 * JSON schemas of the users API (Fastify validates requests with them and serialises
 * responses through them, so no column the schema does not name ever leaves the service).
 * Bodies are strict: unknown properties and wrong types are 400s (the server turns off
 * Ajv's coercion and property removal). Ids are decimal strings (bigint, see `User`).
 * The model's `jsonSchema` re-validates every write (email format, lengths).
 */

/** A bigint id as it appears in a URL: decimal, no sign, no leading zero, at most 19 digits. */
export const ID_PATTERN = '^[1-9][0-9]{0,18}$';

/** Route parameters of `/users/:id`: one decimal id (`ID_PATTERN`); anything else is 400. */
export const userIdParams = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: ID_PATTERN } },
} as const;

const email = { type: 'string', minLength: 3, maxLength: EMAIL_MAX_LENGTH } as const;
const name = { type: 'string', minLength: NAME_MIN_LENGTH, maxLength: NAME_MAX_LENGTH } as const;
const writableStatus = { type: 'string', enum: [...WRITABLE_USER_STATUSES] } as const;

/** Body of `POST /users`: email and name required, status optional (`active` or `suspended`). */
export const createUserBody = {
  type: 'object',
  additionalProperties: false,
  required: ['email', 'name'],
  properties: { email, name, status: writableStatus },
} as const;

/** Body of `PATCH /users/:id`: at least one of email, name, status. */
export const patchUserBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { email, name, status: writableStatus },
} as const;

/** `If-Match` is checked by the route (428 when missing); the schema only bounds its size. */
export const patchUserHeaders = {
  type: 'object',
  properties: { 'if-match': { type: 'string', maxLength: 64 } },
} as const;

/**
 * Query of `GET /users`: optional status (`active` or `suspended`: a deleted user is gone for
 * the API, so `deleted` is a 400 naming the allowed values), limit (1..100, default 20 rows)
 * and cursor (at most 512 characters).
 */
export const listUsersQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: [...LISTED_USER_STATUSES] },
    // Query values are strings (no coercion): 1..100 spelled as digits.
    limit: { type: 'string', pattern: '^(100|[1-9][0-9]?)$' },
    cursor: { type: 'string', minLength: 1, maxLength: 512 },
  },
} as const;

/** A user as the API returns it: only these properties leave the service (never `deleted_at`). */
export const userResponse = {
  type: 'object',
  required: ['id', 'email', 'name', 'status', 'version', 'createdAt', 'updatedAt'],
  properties: {
    id: { type: 'string' },
    email: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string', enum: [...USER_STATUSES] },
    version: { type: 'integer' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

/** One page of `GET /users`; `nextCursor` is null on the last page. */
export const userPageResponse = {
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array', items: userResponse },
    nextCursor: { type: ['string', 'null'] },
  },
} as const;

/** Answer of a successful `DELETE /users/:id`: no body. */
export const noContentResponse = { type: 'null' } as const;

/** Answer of a successful `POST /users/import`: how many rows were written. */
export const importResponse = {
  type: 'object',
  required: ['imported'],
  properties: { imported: { type: 'integer' } },
} as const;

/** Media types `POST /users/import` accepts, and the format each means. */
export const IMPORT_MEDIA_TYPES = {
  'application/x-ndjson': 'ndjson',
  'application/ndjson': 'ndjson',
  'application/jsonl': 'ndjson',
  'application/json': 'json-array',
} as const;

/** Headers of `POST /users/import`: a content type is required (see `IMPORT_MEDIA_TYPES`). */
export const importHeaders = {
  type: 'object',
  required: ['content-type'],
  properties: { 'content-type': { type: 'string' } },
} as const;
