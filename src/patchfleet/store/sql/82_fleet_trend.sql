-- fleet_trend: how compliant was the fleet on each day?
-- One row per day from the first run's date to the last run's (no gaps): each node's latest
-- state as of that day (daily_node_states: its latest run started that day or before, carried
-- forward), counted. compliant_pct is over the nodes whose state was known (not FAILED).
-- stale_nodes: nodes counted with a state carried forward from an earlier day. What-if
-- evaluations never count.
CREATE OR REPLACE VIEW fleet_trend AS
SELECT
    day,
    count(*) AS nodes,
    count(*) FILTER (WHERE status = 'COMPLIANT') AS compliant_nodes,
    count(*) FILTER (WHERE status = 'NON_COMPLIANT') AS non_compliant_nodes,
    count(*) FILTER (WHERE status = 'FAILED') AS failed_nodes,
    round(100.0 * count(*) FILTER (WHERE status = 'COMPLIANT')
          / nullif(count(*) FILTER (WHERE status <> 'FAILED'), 0), 1) AS compliant_pct,
    coalesce(sum(missing_count), 0)::BIGINT AS missing_patches,
    count(*) FILTER (WHERE days_stale > 0) AS stale_nodes
FROM daily_node_states
GROUP BY day
ORDER BY day;
