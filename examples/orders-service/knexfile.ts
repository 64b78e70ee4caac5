// The stock knex CLI on this service's own files, with the layer's configuration, migration
// credentials, lock_timeout and (with no database configured) the embedded development server:
//   NODE_OPTIONS='--import tsx' npx knex migrate:latest | seed:run | migrate:rollback | migrate:make NAME
import { defineKnexfile } from 'pg-data-layer';

export default defineKnexfile({
  migrations: { directory: new URL('./migrations', import.meta.url) },
  seeds: {
    directory: (profile) =>
      new URL(`./seeds/${profile === 'test' ? 'test' : 'development'}`, import.meta.url),
  },
});
