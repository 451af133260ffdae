-- Form versions received from the server (protocol version 5), beside the built-in ones the
-- app ships: checked before they were stored, used by the records that name them and, the
-- newest not retired, for new records.
CREATE TABLE forms (
    form_id    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    definition TEXT NOT NULL,
    retired    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (form_id, version)
);
