-- latest_patch_states: the patch rows of each node's latest run (see latest_node_summaries).
-- A node whose latest run FAILED has no rows here: no patch state is claimed for it.
CREATE OR REPLACE VIEW latest_patch_states AS
SELECT *
FROM patch_states
WHERE (node_id, run_id) IN (SELECT node_id, run_id FROM latest_node_summaries);
