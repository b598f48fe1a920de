-- impossible values for the time-based expectations
expect { latency_p99_ms = -5, duplicate_enqueues = 0.5, leaderless = "long" }
