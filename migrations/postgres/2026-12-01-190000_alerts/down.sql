DROP TABLE alert_delivery_attempts;
DROP TABLE alert_deliveries;
DROP TABLE alert_targets;
DROP TABLE alerts;
DROP TABLE alert_rules;
