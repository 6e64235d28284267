// The tables of migrations/{sqlite,postgres}; the same on both backends.

diesel::table! {
    accounts (id) {
        id -> BigInt,
        name -> Text,
        time_zone -> Text,
        mask_addresses -> Bool,
        export_allowed -> Bool,
        splus_content -> Bool,
        splus_log -> Bool,
        webhook_app_key -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        /// None for staff, who belong to no customer account.
        account_id -> Nullable<BigInt>,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> BigInt,
        password_changed_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Nullable<BigInt>,
        state -> Text,
        expires_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    api_users (id) {
        id -> BigInt,
        account_id -> BigInt,
        name -> Text,
        key_hash -> Text,
        key_hint -> Text,
        mail_type -> SmallInt,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        account_id -> BigInt,
        email_id -> Text,
        recipient -> Text,
        api_user -> Text,
        mail_type -> SmallInt,
        tags -> Text,
        sender -> Text,
        subject -> Text,
        status -> SmallInt,
        reason -> Nullable<SmallInt>,
        smtp_reply -> Nullable<Text>,
        rule -> Nullable<Text>,
        requested_at -> BigInt,
        updated_at -> BigInt,
        // providers: the recipient's mailbox provider (src/domain/providers.rs)
        provider -> Text,
    }
}

diesel::table! {
    message_tags (message_id, tag) {
        message_id -> BigInt,
        account_id -> BigInt,
        tag -> Text,
        requested_at -> BigInt,
    }
}

diesel::table! {
    message_events (id) {
        id -> BigInt,
        account_id -> BigInt,
        message_id -> Nullable<BigInt>,
        email_id -> Text,
        event_id -> Nullable<Text>,
        kind -> Text,
        occurred_at -> BigInt,
        smtp_reply -> Nullable<Text>,
        mx -> Nullable<Text>,
        attempt -> Nullable<Integer>,
        reason -> Nullable<SmallInt>,
        detail -> Nullable<Text>,
        received_at -> BigInt,
    }
}

diesel::table! {
    message_contents (message_id) {
        message_id -> BigInt,
        account_id -> BigInt,
        raw -> Binary,
        size -> BigInt,
    }
}

diesel::table! {
    send_logs (message_id) {
        message_id -> BigInt,
        account_id -> BigInt,
        lines -> Text,
    }
}

diesel::table! {
    tracking_events (id) {
        id -> BigInt,
        account_id -> BigInt,
        message_id -> Nullable<BigInt>,
        email_id -> Text,
        recipient -> Text,
        api_user -> Text,
        tag -> Nullable<Text>,
        kind -> SmallInt,
        url -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        occurred_at -> BigInt,
    }
}

diesel::table! {
    bounces (id) {
        id -> BigInt,
        account_id -> BigInt,
        address -> Text,
        reason_text -> Text,
        source -> Text,
        email_id -> Nullable<Text>,
        bounced_at -> BigInt,
        bounce_count -> Integer,
        expires_at -> BigInt,
        first_bounced_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    spam_reports (id) {
        id -> BigInt,
        account_id -> BigInt,
        address -> Text,
        email_id -> Nullable<Text>,
        api_user -> Nullable<Text>,
        reported_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    unsubscribes (id) {
        id -> BigInt,
        account_id -> BigInt,
        address -> Text,
        reason -> Text,
        source -> Text,
        email_id -> Nullable<Text>,
        api_user -> Nullable<Text>,
        tag -> Nullable<Text>,
        unsubscribed_at -> BigInt,
    }
}

diesel::table! {
    blacklist (id) {
        id -> BigInt,
        account_id -> BigInt,
        address -> Text,
        source -> Text,
        api_user -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    export_jobs (id) {
        id -> BigInt,
        account_id -> BigInt,
        requested_by -> Nullable<BigInt>,
        kind -> Text,
        filter -> Text,
        format -> Text,
        gzip -> Bool,
        state -> Text,
        rows_done -> BigInt,
        rows_total -> Nullable<BigInt>,
        file_name -> Nullable<Text>,
        file_size -> Nullable<BigInt>,
        error -> Nullable<Text>,
        attempts -> Integer,
        run_after -> BigInt,
        created_at -> BigInt,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
        heartbeat_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        account_id -> Nullable<BigInt>,
        actor_user_id -> Nullable<BigInt>,
        actor_email -> Text,
        action -> Text,
        target -> Text,
        ip -> Text,
        occurred_at -> BigInt,
    }
}

diesel::table! {
    status_rollup (account_id, hour, status, reason, api_user, mail_type) {
        account_id -> BigInt,
        hour -> BigInt,
        status -> SmallInt,
        reason -> SmallInt,
        api_user -> Text,
        mail_type -> SmallInt,
        count -> BigInt,
    }
}

diesel::table! {
    status_rollup_daily (account_id, day, status, reason, api_user, mail_type) {
        account_id -> BigInt,
        day -> BigInt,
        status -> SmallInt,
        reason -> SmallInt,
        api_user -> Text,
        mail_type -> SmallInt,
        count -> BigInt,
    }
}

diesel::table! {
    status_rollup_tags (account_id, tag, hour, status, reason, api_user, mail_type) {
        account_id -> BigInt,
        tag -> Text,
        hour -> BigInt,
        status -> SmallInt,
        reason -> SmallInt,
        api_user -> Text,
        mail_type -> SmallInt,
        count -> BigInt,
    }
}

diesel::table! {
    webhook_tokens (account_id, token) {
        account_id -> BigInt,
        token -> Text,
        received_at -> BigInt,
    }
}

// console: the name recipients know an account by (the public unsubscribe page).
diesel::table! {
    account_display_names (account_id) {
        account_id -> BigInt,
        display_name -> Text,
    }
}

// Alerts (issue #20, part 4): rules, the alerts they fired, where they go, how that went.
diesel::table! {
    alert_rules (id) {
        id -> BigInt,
        account_id -> BigInt,
        metric -> Text,
        reason -> Nullable<SmallInt>,
        provider -> Nullable<Text>,
        threshold_bp -> Integer,
        recover_bp -> Integer,
        window_minutes -> Integer,
        min_requests -> BigInt,
        enabled -> Bool,
        state -> Text,
        last_value_bp -> Nullable<Integer>,
        last_requests -> Nullable<BigInt>,
        last_evaluated_at -> Nullable<BigInt>,
        next_eval_at -> BigInt,
        lease_until -> Nullable<BigInt>,
        lease_token -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    alerts (id) {
        id -> BigInt,
        account_id -> BigInt,
        rule_id -> Nullable<BigInt>,
        kind -> Text,
        metric -> Text,
        reason -> Nullable<SmallInt>,
        provider -> Nullable<Text>,
        threshold_bp -> Integer,
        window_minutes -> Integer,
        value_bp -> Integer,
        requests -> BigInt,
        matched -> BigInt,
        occurred_at -> BigInt,
    }
}

diesel::table! {
    alert_targets (account_id) {
        account_id -> BigInt,
        webhook_url -> Nullable<Text>,
        webhook_secret -> Text,
        emails -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    alert_deliveries (id) {
        id -> BigInt,
        account_id -> BigInt,
        alert_id -> BigInt,
        channel -> Text,
        target -> Text,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        run_after -> BigInt,
        lease_until -> Nullable<BigInt>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        finished_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    alert_delivery_attempts (id) {
        id -> BigInt,
        account_id -> BigInt,
        delivery_id -> BigInt,
        attempted_at -> BigInt,
        ok -> Bool,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
    }
}
// End of the alerts block.

diesel::joinable!(users -> accounts (account_id));
// --- providers (issue 20) ---
diesel::table! {
    provider_rollup (account_id, hour, provider, status, reason) {
        account_id -> BigInt,
        provider -> Text,
        hour -> BigInt,
        status -> SmallInt,
        reason -> SmallInt,
        count -> BigInt,
    }
}

diesel::table! {
    provider_rollup_daily (account_id, day, provider, status, reason) {
        account_id -> BigInt,
        provider -> Text,
        day -> BigInt,
        status -> SmallInt,
        reason -> SmallInt,
        count -> BigInt,
    }
}

diesel::table! {
    provider_rollup_zone (account_id) {
        account_id -> BigInt,
        zone -> Text,
    }
}

diesel::table! {
    provider_domains (account_id, domain) {
        account_id -> BigInt,
        domain -> Text,
        provider -> Text,
        created_at -> BigInt,
    }
}
// --- end providers ---

diesel::joinable!(message_events -> messages (message_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    users,
    sessions,
    api_users,
    messages,
    message_tags,
    message_events,
    message_contents,
    send_logs,
    tracking_events,
    bounces,
    spam_reports,
    unsubscribes,
    blacklist,
    export_jobs,
    audit_log,
    status_rollup,
    status_rollup_daily,
    status_rollup_tags,
    webhook_tokens,
    alert_rules,
    alerts,
    alert_targets,
    alert_deliveries,
    alert_delivery_attempts,
    provider_rollup,
    provider_rollup_daily,
    provider_rollup_zone,
    provider_domains,
);
