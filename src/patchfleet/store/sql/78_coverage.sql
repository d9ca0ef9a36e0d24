-- coverage: when was each node last scanned, and how long ago?
-- One row per node any run has seen (what-if evaluations never count: they contact no node):
-- its last operation (scan or install, FAILED included) and the days since it ended, its last
-- successful one (status not FAILED), and its latest status. Find stale nodes with
-- WHERE days_since_last_success >= 7. Nodes of an inventory that no run ever reached are not in
-- the store at all, so no view can list them: compare the inventory's node ids with this view
-- to find them. Days are whole 24-hour periods up to now.
CREATE OR REPLACE VIEW coverage AS
WITH runs AS (
    SELECT * FROM node_summaries WHERE what_if IS NOT TRUE
),
per_node AS (
    SELECT
        node_id,
        count(*) AS runs,
        min(operation_end_time) AS first_seen,
        max(operation_end_time) AS last_scan_time,
        max(operation_end_time) FILTER (WHERE status <> 'FAILED') AS last_success_time
    FROM runs
    GROUP BY node_id
)
SELECT
    p.node_id,
    l.host,
    l.operating_system,
    l.patch_group,
    l.status AS latest_status,
    l.failure_reason AS latest_failure_reason,
    p.runs,
    p.first_seen,
    p.last_scan_time,
    floor(epoch(now() - p.last_scan_time) / 86400)::INTEGER AS days_since_last_scan,
    p.last_success_time,
    floor(epoch(now() - p.last_success_time) / 86400)::INTEGER AS days_since_last_success
FROM per_node AS p
JOIN latest_node_summaries AS l ON l.node_id = p.node_id
ORDER BY p.last_success_time NULLS FIRST, p.node_id;
