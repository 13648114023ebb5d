-- The schema of servers before versioned migrations (main at 81ccbd6), unchanged: `IF NOT
-- EXISTS` makes this version a no-op on a database such a server created, so it upgrades in place.
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, created_at_s BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, tenant TEXT, role TEXT NOT NULL, created_at_s BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, user_name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at_s BIGINT NOT NULL, expires_at_s BIGINT, revoked_at_s BIGINT);
CREATE TABLE IF NOT EXISTS quotas (tenant TEXT NOT NULL, accelerator TEXT NOT NULL, limit_count BIGINT NOT NULL, PRIMARY KEY (tenant, accelerator));
CREATE TABLE IF NOT EXISTS jobs (id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, restarts BIGINT NOT NULL, attempts BIGINT NOT NULL, exit_code BIGINT, submitted_at_s BIGINT NOT NULL, started_at_s BIGINT, finished_at_s BIGINT, spec TEXT NOT NULL, run TEXT);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, id);
CREATE TABLE IF NOT EXISTS audit (seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
