DROP TABLE account_display_names;
