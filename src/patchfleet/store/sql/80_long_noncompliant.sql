-- long_noncompliant: which nodes have been non-compliant without a break, and for how long?
-- One row per node whose latest successful result is NON_COMPLIANT: since is the end of the
-- first run of its current streak (the runs since its last COMPLIANT one; FAILED runs tell
-- nothing either way and neither break nor start a streak), last_report_time the end of its
-- latest NON_COMPLIANT run, and days the whole 24-hour periods between them: what the store
-- proves, not a guess past the latest scan. Filter with WHERE days >= 30. latest_status is
-- FAILED when the node's very latest run failed (see coverage). What-if evaluations never
-- count. Longest first.
CREATE OR REPLACE VIEW long_noncompliant AS
WITH runs AS (
    SELECT node_id, run_id, status, operation_end_time, operation_start_time
    FROM node_summaries
    WHERE what_if IS NOT TRUE AND status IN ('COMPLIANT', 'NON_COMPLIANT')
),
per_node AS (
    SELECT
        node_id,
        max(operation_end_time) FILTER (WHERE status = 'COMPLIANT') AS last_compliant,
        arg_max(status, operation_end_time) AS latest_known
    FROM runs
    GROUP BY node_id
),
streak AS (
    SELECT
        r.node_id,
        min(r.operation_end_time) AS since,
        max(r.operation_end_time) AS last_report_time,
        count(*) AS runs
    FROM runs AS r
    JOIN per_node AS p ON p.node_id = r.node_id
    WHERE p.latest_known = 'NON_COMPLIANT'
      AND (p.last_compliant IS NULL OR r.operation_end_time > p.last_compliant)
    GROUP BY r.node_id
)
SELECT
    s.node_id,
    l.host,
    l.operating_system,
    l.patch_group,
    floor(epoch(s.last_report_time - s.since) / 86400)::INTEGER AS days,
    s.since,
    s.last_report_time,
    s.runs,
    l.status AS latest_status,
    l.missing_count,
    l.overall_severity
FROM streak AS s
JOIN latest_node_summaries AS l ON l.node_id = s.node_id
ORDER BY days DESC, s.since, s.node_id;
