#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was broken; names the field that clashed.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A uniqueness rule was broken; names the field, and the message says
    /// what the value clashes with.
    #[error("{message}")]
    Clash {
        field: &'static str,
        message: String,
    },
    /// A value refers to something that is not there (or to itself); names
    /// the field, and the message names the value.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
