-- compliance_by_tag: how compliant is each tag value (Env=prod, Team=web, ...) right now?
-- One row per tag key x value over each node's latest result (latest_node_summaries: what-if
-- evaluations never count); a node with three tags counts in three rows. Nodes without tags,
-- and nodes whose latest run was stored before schema v2 (tags NULL), are in no row. Filter on
-- one key to partition the fleet: WHERE tag_key = 'Env'.
CREATE OR REPLACE VIEW compliance_by_tag AS
WITH tagged AS (
    SELECT status, missing_count, critical_non_compliant_count, security_non_compliant_count,
           unnest(map_keys(tags)) AS tag_key, unnest(map_values(tags)) AS tag_value
    FROM latest_node_summaries
    WHERE tags IS NOT NULL
)
SELECT
    tag_key,
    tag_value,
    count(*) AS nodes,
    count(*) FILTER (WHERE status = 'COMPLIANT') AS compliant_nodes,
    count(*) FILTER (WHERE status = 'NON_COMPLIANT') AS non_compliant_nodes,
    count(*) FILTER (WHERE status = 'FAILED') AS failed_nodes,
    round(100.0 * count(*) FILTER (WHERE status = 'COMPLIANT')
          / nullif(count(*) FILTER (WHERE status <> 'FAILED'), 0), 1) AS compliant_pct,
    coalesce(sum(missing_count), 0)::BIGINT AS missing_patches,
    coalesce(sum(critical_non_compliant_count), 0)::BIGINT AS critical_non_compliant_patches,
    coalesce(sum(security_non_compliant_count), 0)::BIGINT AS security_non_compliant_patches
FROM tagged
GROUP BY tag_key, tag_value
ORDER BY tag_key, tag_value;
