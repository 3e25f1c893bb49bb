-- Resources are documents: the domain serializes each one into `body`.
-- The rowid gives a stable creation order for listings (an upsert keeps it).
CREATE TABLE resources (
    kind    TEXT NOT NULL,
    id      TEXT NOT NULL,
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    body    TEXT NOT NULL,
    UNIQUE (kind, id)
);
CREATE INDEX resources_scope ON resources (kind, account, region);

-- Small key/value space for what is not a resource: idempotency records,
-- default-network markers, the public address pool.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Access keys of configured accounts (secrets are needed to verify SigV4).
CREATE TABLE access_keys (
    access_key_id     TEXT PRIMARY KEY,
    secret_access_key TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    created_at        INTEGER NOT NULL
) WITHOUT ROWID;
