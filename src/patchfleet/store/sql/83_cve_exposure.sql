-- cve_exposure: how much CVE exposure did the fleet carry on each day?
-- One row per day (as fleet_trend: each node's latest state as of that day, carried forward):
-- open_cves the distinct CVE ids named by a patch MISSING on some node, exposed_nodes the nodes
-- with at least one, and node_cves the (node, CVE) pairs: "open CVEs x nodes", the area an
-- exposure chart draws. A node whose state that day is a FAILED run claims no CVE (nothing was
-- checked). Days without any open CVE have zeros. What-if evaluations never count.
CREATE OR REPLACE VIEW cve_exposure AS
WITH open AS (
    SELECT DISTINCT node_id, run_id, unnest(cve_ids) AS cve_id
    FROM patch_states
    WHERE state = 'MISSING' AND len(cve_ids) > 0
),
daily AS (
    SELECT d.day, o.node_id, o.cve_id
    FROM daily_node_states AS d
    JOIN open AS o ON o.node_id = d.node_id AND o.run_id = d.run_id
)
SELECT
    d.day,
    coalesce(count(DISTINCT x.cve_id), 0) AS open_cves,
    coalesce(count(DISTINCT x.node_id), 0) AS exposed_nodes,
    count(x.cve_id) AS node_cves
FROM (SELECT DISTINCT day FROM daily_node_states) AS d
LEFT JOIN daily AS x ON x.day = d.day
GROUP BY d.day
ORDER BY d.day;
