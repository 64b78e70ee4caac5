/**
 * The bare baseline of `npm run bench:http`: Fastify 5 and a `pg.Pool` of 10, no logger, no
 * schemas, no model, no transaction. Each route sends the SQL text the service sends for it
 * (captured from the service's query log), as a named statement, in autocommit, and answers
 * the same JSON shape with the same headers (`ETag`, `Location`), so the difference between
 * the two is what the service's layers cost per request.
 *
 * Run as its own process: `DATABASE_URL=... PORT=... node --import tsx bench/http/baseline-server.ts`;
 * it prints `listening` when ready and exits on SIGTERM.
 */
import Fastify, { type FastifyReply } from 'fastify';
import pg from 'pg';

const COLUMNS = '"id", "email", "name", "status", "version", "created_at", "updated_at", "deleted_at"';

/** The service's statements, as its query log shows them (knex/objection spelling). */
const SQL = {
  byId: `select ${COLUMNS} from "users" where "id" = $1 and "deleted_at" is null limit $2`,
  page: `select ${COLUMNS} from "users" where "deleted_at" is null order by "id" asc limit $1`,
  insert: 'insert into "users" ("email", "name", "status") values ($1, $2, $3) returning *',
  patch:
    'update "users" set "name" = $1, "updated_at" = now(), "version" = version + 1 ' +
    'where "id" = $2 and "version" = $3 and "deleted_at" is null returning *',
  versionOf: 'select "version" from "users" where "id" = $1 and "deleted_at" is null limit $2',
} as const;

interface Row {
  id: string;
  email: string;
  name: string;
  status: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
const app = Fastify({ logger: false });

function toJson(r: Row): Record<string, unknown> {
  return {
    id: r.id,
    email: r.email,
    name: r.name,
    status: r.status,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function notFound(reply: FastifyReply): FastifyReply {
  return reply.code(404).send({ statusCode: 404, code: 'NOT_FOUND', message: 'Not found.' });
}

app.get<{ Params: { id: string } }>('/users/:id', async (request, reply) => {
  const { rows } = await pool.query<Row>({ name: 'by_id', text: SQL.byId, values: [request.params.id, 1] });
  const row = rows[0];
  if (!row) return notFound(reply);
  return reply.header('etag', `"${row.version}"`).send(toJson(row));
});

app.get<{ Querystring: { limit?: string } }>('/users', async (request) => {
  const limit = Number(request.query.limit ?? 20);
  const { rows } = await pool.query<Row>({ name: 'page', text: SQL.page, values: [limit + 1] });
  const items = rows.slice(0, limit).map(toJson);
  return { items, nextCursor: rows.length > limit ? `after-${String(items.at(-1)?.id)}` : null };
});

app.post<{ Body: { email: string; name: string } }>('/users', async (request, reply) => {
  const { email, name } = request.body;
  const { rows } = await pool.query<Row>({
    name: 'insert',
    text: SQL.insert,
    values: [email.trim().toLowerCase(), name, 'active'],
  });
  const row = rows[0]!;
  return reply
    .code(201)
    .header('location', `/users/${row.id}`)
    .header('etag', `"${row.version}"`)
    .send(toJson(row));
});

app.patch<{ Params: { id: string }; Body: { name: string } }>('/users/:id', async (request, reply) => {
  const version = Number(/\d+/.exec(request.headers['if-match'] ?? '')?.[0]);
  const { id } = request.params;
  const { rows } = await pool.query<Row>({
    name: 'patch',
    text: SQL.patch,
    values: [request.body.name, id, version],
  });
  const row = rows[0];
  if (row) return reply.header('etag', `"${row.version}"`).send(toJson(row));
  const current = await pool.query({ name: 'version_of', text: SQL.versionOf, values: [id, 1] });
  if (current.rows.length === 0) return notFound(reply);
  return reply.code(412).send({ statusCode: 412, code: 'VERSION_MISMATCH', message: 'Version moved.' });
});

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
console.log('listening');

process.once('SIGTERM', () => {
  void app
    .close()
    .then(() => pool.end())
    .finally(() => process.exit(0));
});
