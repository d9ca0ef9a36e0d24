-- compliance_history: one row per run (with its date partition): how many nodes it covered, how
-- many were compliant, non-compliant or failed, and the patch counts summed over its nodes.
-- compliant_pct is over the nodes that were scanned (FAILED nodes claim nothing either way).
-- What-if evaluations are left out (they are in node_summaries with what_if = true).
CREATE OR REPLACE VIEW compliance_history AS
SELECT
    date,
    run_id,
    any_value(operation) AS operation,
    any_value(execution_type) AS execution_type,
    min(operation_start_time) AS started_at,
    max(operation_end_time) AS finished_at,
    count(*) AS nodes,
    count(*) FILTER (WHERE status = 'COMPLIANT') AS compliant_nodes,
    count(*) FILTER (WHERE status = 'NON_COMPLIANT') AS non_compliant_nodes,
    count(*) FILTER (WHERE status = 'FAILED') AS failed_nodes,
    round(
        100.0 * count(*) FILTER (WHERE status = 'COMPLIANT')
        / nullif(count(*) FILTER (WHERE status <> 'FAILED'), 0),
        1
    ) AS compliant_pct,
    sum(missing_count)::BIGINT AS missing_patches,
    sum(failed_count)::BIGINT AS failed_patches,
    sum(installed_pending_reboot_count)::BIGINT AS pending_reboot_patches,
    sum(critical_non_compliant_count)::BIGINT AS critical_non_compliant_patches,
    sum(security_non_compliant_count)::BIGINT AS security_non_compliant_patches
FROM node_summaries
WHERE what_if IS NOT TRUE
GROUP BY date, run_id
ORDER BY started_at, run_id;
