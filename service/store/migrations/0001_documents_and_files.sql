-- The store in PostgreSQL: every row carries its office, and every query names one.

-- A shard exists once something was put in it (as a TinyDB shard file does), even if all was deleted since.
-- Collation "C", so that a prefix is a range of the primary key: `shards("log")` reads an index, not the table.
CREATE TABLE shards (
    office text NOT NULL,
    shard text COLLATE "C" NOT NULL,
    PRIMARY KEY (office, shard)
);

-- JSONB cannot hold every JSON text the store writes (NUL, lone surrogates from undecodable headers, NaN):
-- for those the JSONB twin is NULL, and the text alone holds the document.
CREATE FUNCTION as_jsonb(body text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN body::jsonb;
EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
    RETURN NULL;
END
$$;

-- `body` is the document's JSON as it was written, which the store reads back: JSONB would reorder
-- its keys, and the service reads dicts in the order they were written. `document` is the same as
-- JSONB, made by the server from the body (so the two never disagree), for SQL and its indexes.
-- `position` keeps the order TinyDB keeps: first put first, an update staying where it was.
CREATE SEQUENCE document_positions;
CREATE TABLE documents (
    office text NOT NULL,
    shard text COLLATE "C" NOT NULL,
    table_name text NOT NULL,
    key text NOT NULL,
    position bigint NOT NULL DEFAULT nextval('document_positions'),
    body text NOT NULL,
    document jsonb GENERATED ALWAYS AS (as_jsonb(body)) STORED,
    PRIMARY KEY (office, shard, table_name, key)
);
CREATE INDEX documents_in_order ON documents (office, shard, table_name, position);

-- Bytes once per content, whichever office and path hold them.
CREATE TABLE contents (
    sha256 text PRIMARY KEY,
    data bytea NOT NULL
);
-- The path is the one `put_file` returns, so archive code reading by path works unchanged.
CREATE TABLE files (
    office text NOT NULL,
    path text COLLATE "C" NOT NULL,
    sha256 text NOT NULL REFERENCES contents,
    PRIMARY KEY (office, path)
);
