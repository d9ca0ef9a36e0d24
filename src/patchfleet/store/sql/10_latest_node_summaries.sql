-- latest_node_summaries: the newest node_summaries row of each node, whichever run wrote it.
-- A FAILED scan counts: it is the newest thing known about the node, and hiding it behind an
-- older COMPLIANT row would claim a compliance nobody checked. Ties are broken by run_id so the
-- answer is stable. What-if evaluations (`patchfleet evaluate --save`, what_if = true) never
-- count: they say what a baseline would conclude, not what the node is.
CREATE OR REPLACE VIEW latest_node_summaries AS
SELECT *
FROM node_summaries
WHERE what_if IS NOT TRUE
QUALIFY row_number() OVER (
    PARTITION BY node_id
    ORDER BY operation_end_time DESC, operation_start_time DESC, run_id DESC
) = 1;
