-- daily_node_states: what was each node's state as of the end of each day?
-- One row per day x node, for every day from the first run's date to the last run's date (the
-- date partition: the UTC day a run started), and every node seen by that day: the node's
-- latest run started on or before that day (ordered as latest_node_summaries orders them),
-- carried forward over days without a run. A node that stopped being scanned keeps its last
-- state (see coverage for how old it is: days_stale here). What-if evaluations never count.
-- fleet_trend and cve_exposure are built on it.
CREATE OR REPLACE VIEW daily_node_states AS
WITH runs AS (
    SELECT node_id, run_id, date, status, missing_count, operation_end_time
    FROM node_summaries
    WHERE what_if IS NOT TRUE
),
last_of_day AS (
    SELECT *
    FROM runs
    QUALIFY row_number() OVER (
        PARTITION BY node_id, date ORDER BY operation_end_time DESC, run_id DESC) = 1
),
days AS (
    SELECT CAST(unnest(generate_series(min(date)::TIMESTAMP, max(date)::TIMESTAMP,
                                       INTERVAL 1 DAY)) AS DATE) AS day
    FROM runs
    HAVING count(*) > 0
),
node_days AS (
    SELECT d.day, n.node_id
    FROM days AS d
    JOIN (SELECT node_id, min(date) AS first_date FROM runs GROUP BY node_id) AS n
        ON n.first_date <= d.day
)
SELECT
    nd.day,
    nd.node_id,
    s.status,
    s.missing_count,
    s.run_id,
    s.date AS run_date,
    (nd.day - s.date)::INTEGER AS days_stale
FROM node_days AS nd
ASOF JOIN last_of_day AS s ON s.node_id = nd.node_id AND s.date <= nd.day;
