-- changes_since_previous_run: what changed on each node since its previous run, and why?
-- One row per node: its latest result (latest_node_summaries) beside the run of the node
-- before it (what-if evaluations never count). change says which:
--   'first run'  the node has no earlier run;
--   'baseline'   the node was judged by another baseline (baseline_id differs, or both runs
--                recorded a baseline_hash and it differs): the verdict moved with the rules, so
--                don't read it as the node changing;
--   'node'       same baseline, and the status, the missing count or the set of missing
--                packages differs: the node (or what its repositories offer) changed;
--   'none'       nothing of the above differs.
-- newly_missing / no_longer_missing: packages MISSING now and not before, and the reverse.
CREATE OR REPLACE VIEW changes_since_previous_run AS
WITH ranked AS (
    SELECT node_id, run_id, status, missing_count, baseline_id, baseline_hash,
           operation_end_time,
           row_number() OVER (
               PARTITION BY node_id
               ORDER BY operation_end_time DESC, operation_start_time DESC, run_id DESC
           ) AS rn
    FROM node_summaries
    WHERE what_if IS NOT TRUE
),
now_ AS (SELECT * FROM ranked WHERE rn = 1),
prev AS (SELECT * FROM ranked WHERE rn = 2),
missing AS (
    SELECT p.node_id, p.run_id, list(DISTINCT p.package ORDER BY p.package) AS packages
    FROM patch_states AS p
    JOIN ranked AS r ON r.node_id = p.node_id AND r.run_id = p.run_id AND r.rn <= 2
    WHERE p.state = 'MISSING'
    GROUP BY p.node_id, p.run_id
),
paired AS (
    SELECT
        n.node_id,
        n.run_id,
        p.run_id AS previous_run_id,
        n.operation_end_time AS report_time,
        p.operation_end_time AS previous_report_time,
        n.status,
        p.status AS previous_status,
        n.missing_count,
        p.missing_count AS previous_missing_count,
        n.baseline_id,
        p.baseline_id AS previous_baseline_id,
        n.baseline_hash,
        p.baseline_hash AS previous_baseline_hash,
        coalesce(mn.packages, []::VARCHAR[]) AS missing_now,
        coalesce(mp.packages, []::VARCHAR[]) AS missing_before
    FROM now_ AS n
    LEFT JOIN prev AS p ON p.node_id = n.node_id
    LEFT JOIN missing AS mn ON mn.node_id = n.node_id AND mn.run_id = n.run_id
    LEFT JOIN missing AS mp ON mp.node_id = n.node_id AND mp.run_id = p.run_id
)
SELECT
    node_id,
    run_id,
    previous_run_id,
    CASE
        WHEN previous_run_id IS NULL THEN 'first run'
        WHEN baseline_id IS DISTINCT FROM previous_baseline_id
            OR baseline_hash <> previous_baseline_hash THEN 'baseline'
        WHEN status <> previous_status OR missing_count <> previous_missing_count
            OR missing_now <> missing_before THEN 'node'
        ELSE 'none'
    END AS change,
    status,
    previous_status,
    missing_count,
    previous_missing_count,
    missing_count - previous_missing_count AS missing_delta,
    list_filter(missing_now, lambda x: NOT list_contains(missing_before, x)) AS newly_missing,
    CASE WHEN previous_run_id IS NOT NULL THEN
        list_filter(missing_before, lambda x: NOT list_contains(missing_now, x))
    END AS no_longer_missing,
    baseline_id,
    previous_baseline_id,
    baseline_hash,
    previous_baseline_hash,
    report_time,
    previous_report_time
FROM paired
ORDER BY change = 'none', node_id;
