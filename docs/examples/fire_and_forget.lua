-- Producer options: transient messages and fire-and-forget publishing.
-- confirms = false: the producer sends each publish once and never waits
-- for (or retries on) a confirm, so every publish ends "unknown": nothing
-- was promised, so nothing can be proven lost. The no_loss line shows how
-- many fire-and-forget publishes never reached a consumer
-- (unconfirmed_missing): here, those sent to a leader that crashed.
scenario { name = "fire_and_forget", seeds = "1..2" }

cluster { replicas = 3, acks = "quorum", fsync = "always" }
workload {
  producers = { rate = 200, confirms = false, persistent = false },
  consumers = { idempotent = true },
}
phases { chaos = 6, heal = 2, drain = 6 }

at(2, function() crash(leader()) end)
at(3, function() restart(down()) end)

-- no_loss holds vacuously for the fire-and-forget producer; the probe
-- (which waits for confirms) is still held to it.
expect { no_loss = true, no_duplicates = true, replica_agreement = true }
