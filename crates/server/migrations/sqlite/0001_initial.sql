-- The schema of servers before versioned migrations (main at 81ccbd6), unchanged: `IF NOT
-- EXISTS` makes this version a no-op on a database such a server created, so it upgrades in place.
CREATE TABLE IF NOT EXISTS tenants (name TEXT PRIMARY KEY, created_at_s INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, tenant TEXT, role TEXT NOT NULL, created_at_s INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, user_name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created_at_s INTEGER NOT NULL, expires_at_s INTEGER, revoked_at_s INTEGER);
CREATE TABLE IF NOT EXISTS quotas (tenant TEXT NOT NULL, accelerator TEXT NOT NULL, limit_count INTEGER NOT NULL, PRIMARY KEY (tenant, accelerator));
CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, restarts INTEGER NOT NULL, attempts INTEGER NOT NULL, exit_code INTEGER, submitted_at_s INTEGER NOT NULL, started_at_s INTEGER, finished_at_s INTEGER, spec TEXT NOT NULL, run TEXT);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, id);
CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
