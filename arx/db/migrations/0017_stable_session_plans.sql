-- arx.execute_context's queries are cached by PL/pgSQL and, after a few
-- calls, run as generic plans: parameters unknown, so "the agent's targeted
-- writes of the last hour" is estimated at a default fraction of the agent's
-- rows. Below the LIMIT of 200, a bitmap scan and a sort looked cheaper than
-- reading the index backwards and stopping, and a busy agent's every call
-- read all its writes of the hour (seen in CI once autovacuum had analyzed the
-- table). Every query here wants an ordered index scan that stops early;
-- bitmap scans can never stop early, so they are off for this function.
ALTER FUNCTION arx.execute_context(uuid, uuid, text, integer) SET enable_bitmapscan = off;
