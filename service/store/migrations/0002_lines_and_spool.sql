-- Append-only logs of lines (the outbox's sends), each line committed on its own the moment it is written,
-- so that another instance taking the office over reads every send the last one made.
CREATE TABLE lines (
    office text NOT NULL,
    name text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    text text NOT NULL,
    PRIMARY KEY (office, name, seq)
);

-- Spools of small entries for the instance running the office (the clerk's commands, written from any machine),
-- each taken away on its own once handled; `seq` keeps them in the order they came.
CREATE TABLE spool (
    office text NOT NULL,
    name text NOT NULL,
    key text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    data bytea NOT NULL,
    PRIMARY KEY (office, name, key)
);
