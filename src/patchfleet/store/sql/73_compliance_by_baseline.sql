-- compliance_by_baseline: how compliant are the nodes judged by each baseline right now?
-- One row per baseline id x content hash over each node's latest result (latest_node_summaries:
-- what-if evaluations never count): a baseline edited under the same id shows as two rows
-- until every node is judged by the new content. baseline_hash is NULL for runs stored before
-- schema v2; baseline_id is NULL for nodes that failed before a baseline was chosen.
CREATE OR REPLACE VIEW compliance_by_baseline AS
SELECT
    baseline_id,
    baseline_hash,
    count(*) AS nodes,
    count(*) FILTER (WHERE status = 'COMPLIANT') AS compliant_nodes,
    count(*) FILTER (WHERE status = 'NON_COMPLIANT') AS non_compliant_nodes,
    count(*) FILTER (WHERE status = 'FAILED') AS failed_nodes,
    round(100.0 * count(*) FILTER (WHERE status = 'COMPLIANT')
          / nullif(count(*) FILTER (WHERE status <> 'FAILED'), 0), 1) AS compliant_pct,
    coalesce(sum(missing_count), 0)::BIGINT AS missing_patches,
    coalesce(sum(critical_non_compliant_count), 0)::BIGINT AS critical_non_compliant_patches,
    coalesce(sum(security_non_compliant_count), 0)::BIGINT AS security_non_compliant_patches,
    max(operation_end_time) AS last_report_time
FROM latest_node_summaries
GROUP BY baseline_id, baseline_hash
ORDER BY baseline_id NULLS LAST, baseline_hash NULLS LAST;
