-- Deleting a user revokes their tokens (`UPDATE tokens ... WHERE user_name = $1`): an index
-- instead of a scan of every token.
CREATE INDEX tokens_user ON tokens (user_name);
