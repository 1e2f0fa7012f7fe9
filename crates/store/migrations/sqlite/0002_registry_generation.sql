-- A counter bumped by every change to what is live (deploy, rollback, removal), so
-- nodes sharing the database notice changes with one cheap read.
CREATE TABLE registry_generation (
    id BIGINT PRIMARY KEY,
    generation BIGINT NOT NULL
);
INSERT INTO registry_generation (id, generation) VALUES (1, 0);
