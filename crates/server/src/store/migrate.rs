//! The schema as versioned migrations, applied by sqlx's `Migrator` (its `_sqlx_migrations`
//! table records each version and checksum), one set per database in `migrations/`.
//!
//! Version 1 is the schema servers created before versions existed, with its `IF NOT EXISTS`: on
//! such a database it is a no-op that gets recorded, and later versions then upgrade it in place
//! (tested with a fixture made by that server, `tests/store/migrate.rs`). The files follow
//! `sqlx::migrate!`'s layout; they are embedded with `include_str!` instead of the macro, which
//! would build sqlx's proc-macro crate and, for the host, SQLite (C) and both drivers again.

use std::borrow::Cow;

use futures_core::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// One migration: version, description, SQL.
type Version = (i64, &'static str, &'static str);

const SQLITE: &[Version] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "tokens by user",
        include_str!("../../migrations/sqlite/0002_tokens_by_user.sql"),
    ),
];

const POSTGRES: &[Version] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "tokens by user",
        include_str!("../../migrations/postgres/0002_tokens_by_user.sql"),
    ),
];

/// Migrations compiled into the binary.
#[derive(Debug)]
struct Embedded(&'static [Version]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        let migrations = self
            .0
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// The migrator of `kind` (`sqlite` or `postgres`).
pub(super) async fn migrator(kind: &str) -> Result<Migrator, sqlx::migrate::MigrateError> {
    let versions = if kind == "sqlite" { SQLITE } else { POSTGRES };
    Migrator::new(Embedded(versions)).await
}

/// The newest schema version this server knows.
pub const LATEST_VERSION: i64 = SQLITE[SQLITE.len() - 1].0;

#[cfg(test)]
mod tests {
    #[test]
    fn both_databases_have_the_same_versions() {
        let versions = |set: &[super::Version]| -> Vec<(i64, &str)> {
            set.iter().map(|&(v, d, _)| (v, d)).collect()
        };
        assert_eq!(versions(super::SQLITE), versions(super::POSTGRES));
        assert_eq!(super::LATEST_VERSION, 2);
    }
}
