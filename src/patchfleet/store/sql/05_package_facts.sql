-- package_facts: what each node showed (schema v2), one row per node x run x fact element:
-- installed packages, apt's offered versions, rpm updates and notices, apt's planned changes
-- (kind tells them apart; see the README's "Facts" section). seq is the element's place in
-- the node's scan, from 0. Stored normalised: each distinct element once per run in
-- fact_elements, each node's list of element ids in fact_lists; this view joins them back.
CREATE OR REPLACE VIEW package_facts AS
WITH lists AS (
    SELECT node_id, run_id, date, unnest(elements) AS element_id,
           unnest(range(len(elements))) AS seq
    FROM fact_lists
)
SELECT l.node_id, l.seq::INTEGER AS seq, e.* EXCLUDE (element_id, run_id, date), l.run_id,
       l.date
FROM lists AS l
JOIN fact_elements AS e ON e.run_id = l.run_id AND e.element_id = l.element_id;
