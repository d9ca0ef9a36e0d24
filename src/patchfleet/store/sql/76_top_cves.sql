-- top_cves: which CVEs are open on the most nodes right now?
-- One row per CVE id named by a patch in state MISSING in some node's latest result
-- (latest_patch_states), most nodes first (then by CVE id): the nodes exposed and the packages
-- whose missing versions fix it. A CVE is open on a node while a patch fixing it is MISSING
-- there (a patch that failed to install is FAILED: see noncompliant_nodes). apt records carry
-- CVE ids only when the baseline's sources name them; rpm notices do.
CREATE OR REPLACE VIEW top_cves AS
WITH open AS (
    SELECT node_id, package, unnest(cve_ids) AS cve_id
    FROM latest_patch_states
    WHERE state = 'MISSING'
)
SELECT
    cve_id,
    count(DISTINCT node_id) AS nodes,
    list(DISTINCT package ORDER BY package) AS packages
FROM open
GROUP BY cve_id
ORDER BY nodes DESC, cve_id;
