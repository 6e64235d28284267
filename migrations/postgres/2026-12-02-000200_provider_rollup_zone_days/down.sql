DROP TABLE provider_rollup_zone;
