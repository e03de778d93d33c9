-- Version 2: test packages' content kept in the database, in chunks of at most 1 MiB
-- (n = 0, 1, ... in order), so that no statement carries a whole package and every host
-- holding a copy of the home reads the same packages. Written in the transaction that
-- records the package; deleted with its `packages` row. PostgreSQL only: a SQLite central
-- keeps the files packages/<sha256>.zip in its home. The unused column `packages.content`
-- of version 1 goes.
CREATE TABLE package_chunks (
    sha256 TEXT COLLATE "C" NOT NULL, n INTEGER NOT NULL, bytes BYTEA NOT NULL,
    PRIMARY KEY (sha256, n));

ALTER TABLE packages DROP COLUMN content;
