# The postgres image runs this once, on the first start of an empty data volume
# (/docker-entrypoint-initdb.d), as its superuser: it creates the least-privilege roles of
# examples/least-privilege.sql, so the migration job runs as the schema owner and the service
# as a DML-only role, never as the superuser. Sourced by the image's entrypoint (not executed),
# which stops on the first failing command.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner_role=app_owner -v owner_password="$APP_OWNER_PASSWORD" \
  -v app_role=app -v app_password="$APP_PASSWORD" \
  -v schema=app \
  -f /least-privilege.sql
