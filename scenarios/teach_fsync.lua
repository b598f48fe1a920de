-- teach_fsync: fsync=never acknowledges writes that live only in the page
-- cache. acks=quorum makes them "committed" on three machines' caches — and
-- a power loss takes all three caches at once. On restart every replica
-- recovers a log that ends before those entries: confirmed messages that
-- were still queued are gone (and so are the consumers' acks, so some old
-- ones come back). fsync=always fsyncs (group commit) before the append
-- counts toward the quorum, so the majority's disks hold every confirmed
-- entry.
-- The consumer is slower than the producers, so a backlog of confirmed,
-- not-yet-consumed messages exists when the power goes.
scenario {
  name = "teach_fsync",
  description = "fsync=never vs fsync=always under whole-cluster power loss.",
  seeds = "1..5",
}

cluster { replicas = 3, acks = "quorum" }
disk { crash = "lose" }
workload {
  producers = { count = 1, rate = 250, idempotent = true, timeout_ms = 500, retries = 30 },
  consumers = { count = 1, ack = "manual", idempotent = true, processing_ms = 5 },
}
phases { chaos = 10, heal = 2, drain = 20 }

at(6, function() log("power loss"); power_loss() end)
at(7, function() restart(all()) end)

expect { no_loss = true, no_duplicates = true, no_phantoms = true, replica_agreement = true }

teach {
  lesson = "fsync=never: a quorum of page caches is not durable; one power "
    .. "loss erases confirmed messages on every replica at once",
  violation = "no_loss",
  weak = { fsync = "never" },
  strong = { fsync = "always" },
}
