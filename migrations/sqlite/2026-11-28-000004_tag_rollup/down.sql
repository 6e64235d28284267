DROP TABLE status_rollup_tags;
