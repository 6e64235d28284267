DROP TABLE status_rollup_daily;
